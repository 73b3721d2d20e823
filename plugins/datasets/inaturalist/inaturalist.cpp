// iNaturalist (OOD subset of Huang and Li, 2021, as packaged by OpenOOD v1.5): 10000
// plant images from 110 iNaturalist 2017 classes that are not in ImageNet-1K, an OOD
// test set for ImageNet models.
//
// As pytorch-ood's iNaturalist: iNaturalist.zip is extracted into root/iNaturalist and
// every file of root/iNaturalist/images/ is a sample, as stored, label -1. Files are
// sorted (pytorch-ood's order depends on the filesystem). The zip is on Google Drive,
// which ood cannot download from (a confirmation page stands before large files): the
// user puts it into root and `download: true` extracts it.
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "inaturalist";
  set.info.summary = "iNaturalist OOD subset (MOS / OpenOOD): 10000 plant images of non-ImageNet classes, OOD (label -1)";
  set.info.paper = "Huang and Li, MOS: Towards Scaling Out-of-distribution Detection for Large Semantic Space, CVPR 2021";
  set.info.year = 2021;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size; use to-rgb and resize or "
      "center-crop to batch them), label -1.\n"
      "Layout: root/iNaturalist/images/<file> (iNaturalist.zip extracted into root/iNaturalist, as "
      "pytorch-ood and OpenOOD do). Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source: OpenOOD v1.5's Google Drive file 1zfLfMvoUD0CUlKNnkk7LgxZZBnTBipdj (iNaturalist.zip, no "
      "published checksum). Google Drive cannot be downloaded from automatically: put the zip into root "
      "and set download to true to extract it. Images from iNaturalist, under their owners' licences "
      "(mostly Creative Commons); research use.";
  set.root_doc = "folder holding iNaturalist/ (or the placed iNaturalist.zip)";
  set.download_doc =
      "extract iNaturalist.zip placed in root when the data is missing "
      "(it cannot be downloaded automatically)";
  set.source = [](const std::filesystem::path& root) {
    ood::download::Resource archive;
    archive.file_name = "iNaturalist.zip";
    // No URL: Google Drive only, and no published checksum.
    archive.extract_to = "iNaturalist";
    archive.manual = ood::data::google_drive_manual(
        "1zfLfMvoUD0CUlKNnkk7LgxZZBnTBipdj",
        "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'inaturalist'", root,
        "extracts it into " + (root / "iNaturalist").string());
    return ood::download::DataSource{"inaturalist", {archive}, {"iNaturalist/images"}};
  };
  set.folder = "iNaturalist/images";
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("inaturalist", "iNaturalist OOD subset (OpenOOD)", register_components)
