// Places365 (OOD subset as packaged by OpenOOD v1.5): scene photographs from Places365,
// an OOD test set usually for CIFAR-10/100 models.
//
// As pytorch-ood's Places365: places365.zip is extracted into root/places365 and every
// file of each sub-folder root/places365/<folder>/ is a sample (files directly in
// root/places365 are not), as stored, label -1. Files are sorted (pytorch-ood's order
// depends on the filesystem). The zip is on Google Drive, which ood cannot download
// from (a confirmation page stands before large files): the user puts it into root and
// `download: true` extracts it.
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDriveId = "1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay";

ood::download::DataSource source(const fs::path& root) {
  ood::download::Resource archive;
  archive.file_name = "places365.zip";
  // No URL: Google Drive only, and no published checksum.
  archive.extract_to = "places365";
  archive.manual = std::string("Google Drive file ") + kDriveId + " (https://drive.google.com/uc?id=" + kDriveId +
                   "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'places365') cannot be "
                   "downloaded by ood: get it with a browser or gdown, put it into " + root.string() +
                   "; then \"download\": true (or `ood data fetch`) extracts it into " +
                   (root / "places365").string() + " (or extract it there yourself)";
  return {"places365", {archive}, {"places365"}};
}

std::shared_ptr<ood::Dataset> make_places365(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(root), p.get_bool("download"));
  const fs::path folder = root / "places365";
  // One level deep, as pytorch-ood: places365/<folder>/<file>.
  std::vector<fs::path> files;
  for (const auto& sub : ood::data::list_subfolders(folder))
    for (auto& f : ood::data::list_files(folder / sub)) files.push_back(std::move(f));
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "places365";
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "places365";
  info.summary = "Places365 OOD subset (OpenOOD): 36500 scene photographs, OOD (label -1)";
  info.paper = "Zhou et al., Places: A 10 Million Image Database for Scene Recognition, TPAMI 2017";
  info.year = 2017;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs; pytorch-ood gives 36500 images, not checked "
      "here; use to-rgb and resize to batch them), label -1.\n"
      "Layout: root/places365/<folder>/<file> (places365.zip extracted into root/places365, as pytorch-ood "
      "and OpenOOD do; the zip's inner layout is not verified here). Files are sorted; pytorch-ood keeps the "
      "filesystem's order.\n"
      "Source: OpenOOD v1.5's Google Drive file 1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay (places365.zip, no "
      "published checksum). Google Drive cannot be downloaded from automatically: put the zip into root "
      "and set download to true to extract it. Places images are for non-commercial research and "
      "education (places.csail.mit.edu).";
  info.params = {
      ood::data::root_param("folder holding places365/ (or the placed places365.zip)"),
      ood::ParamSpec::boolean("download",
                              "extract places365.zip placed in root when the data is missing (it cannot be "
                              "downloaded automatically)")
          .default_value(false),
  };
  registrar.add_dataset(info, make_places365);
}

}  // namespace

OOD_PLUGIN("places365", "Places365 OOD subset (OpenOOD)", register_components)
