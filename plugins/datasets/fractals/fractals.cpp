// Fractals, one of the two PixMix mixing sets (Hendrycks et al., 2022): fractal images
// mixed into training images by PixMix (see the pix-mix augmentation).
//
// As pytorch-ood's FractalDataset: fractals_and_fvis.tar (shared with
// feature-visualizations) is extracted into root and every file of
// root/fractals_and_fvis/fractals/images/ is a sample, as stored, label -1. Files are
// sorted (pytorch-ood's order depends on the filesystem). The archive is on Google
// Drive, which ood cannot download from (a confirmation page stands before large
// files): the user puts it into root and `download: true` checks and extracts it.
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDriveId = "1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA";

ood::download::DataSource source(const fs::path& root) {
  ood::download::Resource archive;
  archive.file_name = "fractals_and_fvis.tar";
  // No URL: Google Drive only.
  archive.md5 = "3619fb7e2c76130749d97913fdd3ab27";
  archive.manual = std::string("Google Drive file ") + kDriveId + " (https://drive.google.com/uc?id=" + kDriveId +
                   ", linked from the PixMix README github.com/andyzoujm/pixmix) cannot be downloaded by ood: "
                   "get it with a browser or gdown, put it into " + root.string() +
                   "; then \"download\": true (or `ood data fetch`) checks and extracts it "
                   "there (or extract it there yourself)";
  return {"fractals", {archive}, {"fractals_and_fvis/fractals/images"}};
}

std::shared_ptr<ood::Dataset> make_fractals(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(root), p.get_bool("download"));
  const fs::path folder = root / "fractals_and_fvis" / "fractals" / "images";
  std::vector<fs::path> files = ood::data::list_files(folder);
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "fractals";
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "fractals";
  info.summary = "PixMix fractals: the fractal images PixMix mixes into training images (label -1)";
  info.paper = "Hendrycks et al., PixMix: Dreamlike Pictures Comprehensively Improve Safety Measures, CVPR 2022";
  info.year = 2022;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (count, size and format not checked here; use to-rgb "
      "and resize to batch them), label -1.\n"
      "Layout: root/fractals_and_fvis/fractals/images/<file> (the archive's, as pytorch-ood's; the same "
      "archive holds feature-visualizations). Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source: PixMix's Google Drive file 1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA (fractals_and_fvis.tar, md5 "
      "3619fb7e2c76130749d97913fdd3ab27, checked when extracted). Google Drive cannot be downloaded from "
      "automatically: put the tar into root and set download to true to extract it. No licence stated for "
      "the images (the PixMix code is MIT): research use.";
  info.params = {
      ood::data::root_param("folder holding fractals_and_fvis/ (or the placed fractals_and_fvis.tar)"),
      ood::ParamSpec::boolean("download",
                              "check and extract fractals_and_fvis.tar placed in root when the data is missing "
                              "(it cannot be downloaded automatically)")
          .default_value(false),
  };
  registrar.add_dataset(info, make_fractals);
}

}  // namespace

OOD_PLUGIN("fractals", "PixMix fractals mixing set", register_components)
