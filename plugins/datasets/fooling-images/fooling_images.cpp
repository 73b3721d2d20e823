// Fooling images (Nguyen et al., 2015): images evolved with CPPN-encoded evolutionary
// algorithms (MAP-Elites, 10 runs) to be classified with high confidence as ImageNet
// classes although they show nothing recognisable, an OOD set for ImageNet models.
//
// As pytorch-ood's FoolingImages: 10_runs_x_1000_cppns.tar.gz is extracted into root
// and the .png files (case-sensitive suffix, as pytorch-ood) of
// root/10-runs-x-1000-cppns/run_{0..9}/map_gen_5000/ are the samples, as stored, label
// -1. Runs in order, files sorted within each run (pytorch-ood's order within a run
// depends on the filesystem).
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr int kRuns = 10;

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "10_runs_x_1000_cppns.tar.gz";
  archive.urls = {"https://s.anhnguyen.me/10_runs_x_1000_cppns.tar.gz"};
  archive.md5 = "0910d63973b1512770f37bebdbb53e37";
  return {"fooling-images", {archive}, {"10-runs-x-1000-cppns"}};
}

std::shared_ptr<ood::Dataset> make_fooling_images(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path base = root / "10-runs-x-1000-cppns";
  ood::data::ListOptions png_only;
  png_only.extensions = {".png"};
  png_only.case_sensitive = true;
  std::vector<fs::path> files;
  for (int run = 0; run < kRuns; ++run) {
    const fs::path folder = base / ("run_" + std::to_string(run)) / "map_gen_5000";
    try {
      for (auto& f : ood::data::list_files(folder, png_only)) files.push_back(std::move(f));
    } catch (const ood::FileError& e) {
      // Every run is part of the set: a missing one is an incomplete extraction.
      throw ood::FileError(std::string("fooling-images: ") + e.what() + " (each of run_0 .. run_" +
                           std::to_string(kRuns - 1) + " must have map_gen_5000/)");
    }
  }
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "fooling-images";
  options.folder = base;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "fooling-images";
  info.summary = "Fooling images: CPPN-evolved images that fool ImageNet classifiers, OOD (label -1)";
  info.paper = "Nguyen et al., Deep Neural Networks are Easily Fooled: High Confidence Predictions for "
               "Unrecognizable Images, CVPR 2015";
  info.year = 2015;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (PNGs; size and channels not checked here), label -1.\n"
      "Layout: root/10-runs-x-1000-cppns/run_{0..9}/map_gen_5000/*.png (the archive's, as pytorch-ood's; "
      "other files there are skipped). Runs in order, files sorted in each; pytorch-ood keeps the "
      "filesystem's order within a run.\n"
      "Source: s.anhnguyen.me/10_runs_x_1000_cppns.tar.gz (md5 0910d63973b1512770f37bebdbb53e37), from "
      "anhnguyen.me/project/fooling. No licence stated: research use.";
  info.params = {
      ood::data::root_param("folder holding 10-runs-x-1000-cppns/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_fooling_images);
}

}  // namespace

OOD_PLUGIN("fooling-images", "Fooling images dataset", register_components)
