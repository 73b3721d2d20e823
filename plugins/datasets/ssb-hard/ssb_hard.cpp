// SSB-hard, the hard split of the Semantic Shift Benchmark (Vaze et al., 2022), as
// packaged by OpenOOD v1.5: ImageNet-21K images of classes semantically close to
// ImageNet-1K ones, a "near-OOD" test set for ImageNet models.
//
// As pytorch-ood's SSBHard: ssb_hard.zip is extracted into root/ssb_hard and the files
// under each sub-folder root/ssb_hard/<class>/ are the samples, as stored, label -1.
// Unlike pytorch-ood, which reads one level, the class folders are read recursively:
// the zip's inner layout is not verified, and this also finds the images if it has one
// more folder level. Files are sorted (pytorch-ood's order depends on the filesystem).
// The zip is on Google Drive, which ood cannot download from (a confirmation page stands
// before large files): the user puts it into root and `download: true` extracts it.
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDriveId = "1PzkA-WGG8Z18h0ooL_pDdz9cO-DCIouE";

ood::download::DataSource source(const fs::path& root) {
  ood::download::Resource archive;
  archive.file_name = "ssb_hard.zip";
  // No URL: Google Drive only, and no published checksum.
  archive.extract_to = "ssb_hard";
  archive.manual = std::string("Google Drive file ") + kDriveId + " (https://drive.google.com/uc?id=" + kDriveId +
                   "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'ssb_hard') cannot be "
                   "downloaded by ood: get it with a browser or gdown, put it into " + root.string() +
                   "; then \"download\": true (or `ood data fetch`) extracts it into " +
                   (root / "ssb_hard").string() + " (or extract it there yourself)";
  return {"ssb-hard", {archive}, {"ssb_hard"}};
}

std::shared_ptr<ood::Dataset> make_ssb_hard(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(root), p.get_bool("download"));
  const fs::path folder = root / "ssb_hard";
  ood::data::ListOptions recursive;
  recursive.recursive = true;
  std::vector<fs::path> files;
  for (const auto& cls : ood::data::list_subfolders(folder))
    for (auto& f : ood::data::list_files(folder / cls, recursive)) files.push_back(std::move(f));
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "ssb-hard";
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "ssb-hard";
  info.summary = "SSB-hard (OpenOOD): 49000 ImageNet-21K images of classes near ImageNet-1K ones, OOD (label -1)";
  info.paper = "Vaze et al., Open-Set Recognition: A Good Closed-Set Classifier is All You Need, ICLR 2022";
  info.year = 2022;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size; pytorch-ood gives 49000 images, "
      "not checked here; use to-rgb and resize to batch them), label -1.\n"
      "Layout: root/ssb_hard/<class>/... (ssb_hard.zip extracted into root/ssb_hard, as pytorch-ood and "
      "OpenOOD do), class folders read recursively (pytorch-ood: one level; the same files on the expected "
      "layout). Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source (unverified: neither the archive nor a checksum was available to check): OpenOOD v1.5's "
      "Google Drive file 1PzkA-WGG8Z18h0ooL_pDdz9cO-DCIouE (ssb_hard.zip), the same id as pytorch-ood's "
      "SSBHard. Google Drive cannot be downloaded from automatically: put the zip into root and set "
      "download to true to extract it. Images from ImageNet-21K: ImageNet's terms apply (non-commercial "
      "research and education).";
  info.params = {
      ood::data::root_param("folder holding ssb_hard/ (or the placed ssb_hard.zip)"),
      ood::ParamSpec::boolean("download",
                              "extract ssb_hard.zip placed in root when the data is missing (it cannot be "
                              "downloaded automatically)")
          .default_value(false),
  };
  registrar.add_dataset(info, make_ssb_hard);
}

}  // namespace

OOD_PLUGIN("ssb-hard", "SSB-hard, Semantic Shift Benchmark hard split (OpenOOD)", register_components)
