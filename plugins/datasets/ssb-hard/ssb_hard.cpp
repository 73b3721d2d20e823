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
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "ssb-hard";
  set.info.summary = "SSB-hard (OpenOOD): 49000 ImageNet-21K images of classes near ImageNet-1K ones, OOD (label -1)";
  set.info.paper = "Vaze et al., Open-Set Recognition: A Good Closed-Set Classifier is All You Need, ICLR 2022";
  set.info.year = 2022;
  set.info.doc =
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
  set.root_doc = "folder holding ssb_hard/ (or the placed ssb_hard.zip)";
  set.download_doc =
      "extract ssb_hard.zip placed in root when the data is missing "
      "(it cannot be downloaded automatically)";
  set.source = [](const std::filesystem::path& root) {
    ood::download::Resource archive;
    archive.file_name = "ssb_hard.zip";
    // No URL: Google Drive only, and no published checksum.
    archive.extract_to = "ssb_hard";
    archive.manual = ood::data::google_drive_manual(
        "1PzkA-WGG8Z18h0ooL_pDdz9cO-DCIouE",
        "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'ssb_hard'", root,
        "extracts it into " + (root / "ssb_hard").string());
    return ood::download::DataSource{"ssb-hard", {archive}, {"ssb_hard"}};
  };
  set.folder = "ssb_hard";
  // Class folders read recursively (see above).
  set.layout = ood::data::ImageFolderSet::Layout::FilesInSubfolders;
  set.list.recursive = true;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("ssb-hard", "SSB-hard, Semantic Shift Benchmark hard split (OpenOOD)", register_components)
