// NINCO (No ImageNet Class Objects; Bitterwolf et al., 2023): 5879 images of 64 classes,
// each checked by hand to contain no ImageNet-1K object, an OOD test set for ImageNet
// models.
//
// As pytorch-ood's NINCO: NINCO_all.tar.gz is extracted into root and every file of
// root/NINCO/NINCO_OOD_classes/<class>/ is a sample, as stored, label -1 (the
// archive's other folders, NINCO_OOD_unit_tests and NINCO_popular_datasets_subsamples,
// are not part of it). Files are sorted (pytorch-ood's order depends on the
// filesystem). The MD5 is checked on download (pytorch-ood declares it but never
// checks it).
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "ninco";
  set.info.summary = "NINCO: 5879 images of 64 classes free of ImageNet objects, OOD (label -1)";
  set.info.paper = "Bitterwolf et al., In or Out? Fixing ImageNet Out-of-Distribution Detection Evaluation, ICML 2023";
  set.info.year = 2023;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs and PNGs of varying size; use to-rgb and resize "
      "or center-crop to batch them), label -1.\n"
      "Layout: root/NINCO/NINCO_OOD_classes/<class>/<file> (the archive's, as pytorch-ood's; the unit-test "
      "and popular-dataset folders of the archive are not read). Files are sorted; pytorch-ood keeps the "
      "filesystem's order. Metrics over the whole set differ slightly from the paper's, which averages per "
      "class (as pytorch-ood notes).\n"
      "Source: zenodo.org/record/8013288 (NINCO_all.tar.gz, md5 b9ffae324363cd900a81ce3c367cd834). The "
      "images come from other datasets and keep their licences; research use.";
  set.root_doc = "folder holding NINCO/ (or where to download it)";
  set.download_doc = "download and extract the archive when the data is missing";
  set.source = [](const std::filesystem::path&) {
    ood::download::Resource archive;
    archive.file_name = "NINCO_all.tar.gz";
    archive.urls = {"https://zenodo.org/record/8013288/files/NINCO_all.tar.gz"};
    archive.md5 = "b9ffae324363cd900a81ce3c367cd834";
    return ood::download::DataSource{"ninco", {archive}, {"NINCO/NINCO_OOD_classes"}};
  };
  set.folder = "NINCO/NINCO_OOD_classes";
  // One level deep, as pytorch-ood: NINCO_OOD_classes/<class>/<file>.
  set.layout = ood::data::ImageFolderSet::Layout::FilesInSubfolders;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("ninco", "NINCO dataset", register_components)
