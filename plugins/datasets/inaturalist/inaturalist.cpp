// iNaturalist (OOD subset of Huang and Li, 2021, as packaged by OpenOOD v1.5): 10000
// plant images from 110 iNaturalist 2017 classes that are not in ImageNet-1K, an OOD
// test set for ImageNet models.
//
// As pytorch-ood's iNaturalist: iNaturalist.zip is extracted into root/iNaturalist and
// every file of root/iNaturalist/images/ is a sample, as stored, label -1. Files are
// sorted (pytorch-ood's order depends on the filesystem). The zip is on Google Drive,
// which ood cannot download from (a confirmation page stands before large files): the
// user puts it into root and `download: true` extracts it.
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDriveId = "1zfLfMvoUD0CUlKNnkk7LgxZZBnTBipdj";

ood::download::DataSource source(const fs::path& root) {
  ood::download::Resource archive;
  archive.file_name = "iNaturalist.zip";
  // No URL: Google Drive only, and no published checksum.
  archive.extract_to = "iNaturalist";
  archive.manual = std::string("Google Drive file ") + kDriveId + " (https://drive.google.com/uc?id=" + kDriveId +
                   "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'inaturalist') cannot be "
                   "downloaded by ood: get it with a browser or gdown, put it into " + root.string() +
                   "; then \"download\": true (or `ood data fetch`) extracts it into " +
                   (root / "iNaturalist").string() + " (or extract it there yourself)";
  return {"inaturalist", {archive}, {"iNaturalist/images"}};
}

std::shared_ptr<ood::Dataset> make_inaturalist(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(root), p.get_bool("download"));
  const fs::path folder = root / "iNaturalist" / "images";
  std::vector<fs::path> files = ood::data::list_files(folder);
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "inaturalist";
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "inaturalist";
  info.summary = "iNaturalist OOD subset (MOS / OpenOOD): 10000 plant images of non-ImageNet classes, OOD (label -1)";
  info.paper = "Huang and Li, MOS: Towards Scaling Out-of-distribution Detection for Large Semantic Space, CVPR 2021";
  info.year = 2021;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size; use to-rgb and resize or "
      "center-crop to batch them), label -1.\n"
      "Layout: root/iNaturalist/images/<file> (iNaturalist.zip extracted into root/iNaturalist, as "
      "pytorch-ood and OpenOOD do). Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source: OpenOOD v1.5's Google Drive file 1zfLfMvoUD0CUlKNnkk7LgxZZBnTBipdj (iNaturalist.zip, no "
      "published checksum). Google Drive cannot be downloaded from automatically: put the zip into root "
      "and set download to true to extract it. Images from iNaturalist, under their owners' licences "
      "(mostly Creative Commons); research use.";
  info.params = {
      ood::data::root_param("folder holding iNaturalist/ (or the placed iNaturalist.zip)"),
      ood::ParamSpec::boolean("download",
                              "extract iNaturalist.zip placed in root when the data is missing (it cannot be "
                              "downloaded automatically)")
          .default_value(false),
  };
  registrar.add_dataset(info, make_inaturalist);
}

}  // namespace

OOD_PLUGIN("inaturalist", "iNaturalist OOD subset (OpenOOD)", register_components)
