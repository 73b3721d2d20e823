// Places365 (OOD subset as packaged by OpenOOD v1.5): scene photographs from Places365,
// an OOD test set usually for CIFAR-10/100 models.
//
// As pytorch-ood's Places365: places365.zip is extracted into root/places365 and every
// file of each sub-folder root/places365/<folder>/ is a sample (files directly in
// root/places365 are not), as stored, label -1. Files are sorted (pytorch-ood's order
// depends on the filesystem). The zip is on Google Drive, which ood cannot download
// from (a confirmation page stands before large files): the user puts it into root and
// `download: true` extracts it.
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "places365";
  set.info.summary = "Places365 OOD subset (OpenOOD): 36500 scene photographs, OOD (label -1)";
  set.info.paper = "Zhou et al., Places: A 10 Million Image Database for Scene Recognition, TPAMI 2017";
  set.info.year = 2017;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs; pytorch-ood gives 36500 images, not checked "
      "here; use to-rgb and resize to batch them), label -1.\n"
      "Layout: root/places365/<folder>/<file> (places365.zip extracted into root/places365, as pytorch-ood "
      "and OpenOOD do; the zip's inner layout is not verified here). Files are sorted; pytorch-ood keeps the "
      "filesystem's order.\n"
      "Source: OpenOOD v1.5's Google Drive file 1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay (places365.zip, no "
      "published checksum). Google Drive cannot be downloaded from automatically: put the zip into root "
      "and set download to true to extract it. Places images are for non-commercial research and "
      "education (places.csail.mit.edu).";
  set.root_doc = "folder holding places365/ (or the placed places365.zip)";
  set.download_doc =
      "extract places365.zip placed in root when the data is missing "
      "(it cannot be downloaded automatically)";
  set.source = [](const std::filesystem::path& root) {
    ood::download::Resource archive;
    archive.file_name = "places365.zip";
    // No URL: Google Drive only, and no published checksum.
    archive.extract_to = "places365";
    archive.manual = ood::data::google_drive_manual(
        "1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay",
        "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'places365'", root,
        "extracts it into " + (root / "places365").string());
    return ood::download::DataSource{"places365", {archive}, {"places365"}};
  };
  set.folder = "places365";
  // One level deep, as pytorch-ood: places365/<folder>/<file>.
  set.layout = ood::data::ImageFolderSet::Layout::FilesInSubfolders;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("places365", "Places365 OOD subset (OpenOOD)", register_components)
