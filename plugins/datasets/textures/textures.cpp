// Textures, the Describable Textures Dataset (DTD; Cimpoi et al., 2014): 5640 photographs
// of 47 texture classes, a standard OOD set for CIFAR and ImageNet models.
//
// As pytorch-ood's Textures: the archive dtd-r1.0.1.tar.gz (saved as
// textures-r1_0_1.tar.gz) is extracted into root, images are read from
// root/dtd/images/<class>/<file>, as stored (no RGB conversion), every label -1. Files
// are sorted (pytorch-ood's order depends on the filesystem).
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "textures";
  set.info.summary = "Textures (DTD): 5640 texture photographs, OOD (label -1)";
  set.info.paper = "Cimpoi et al., Describing Textures in the Wild, CVPR 2014";
  set.info.year = 2014;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (mostly RGB JPEGs of varying size; use resize "
      "or center-crop to batch them), label -1.\n"
      "Layout: root/dtd/images/<class>/<file> (torchvision's and pytorch-ood's). Source: "
      "robots.ox.ac.uk/~vgg/data/dtd (research use).";
  set.root_doc = "folder holding dtd/ (or where to download it)";
  set.source = [](const std::filesystem::path&) {
    ood::download::Resource archive;
    archive.file_name = "textures-r1_0_1.tar.gz";
    archive.urls = {"https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"};
    archive.md5 = "fff73e5086ae6bdbea199a49dfb8a4c1";
    return ood::download::DataSource{"textures", {archive}, {"dtd/images"}};
  };
  set.folder = "dtd/images";
  // One level deep, as pytorch-ood: images/<class>/<file>; files directly in images/
  // and deeper folders are not samples.
  set.layout = ood::data::ImageFolderSet::Layout::FilesInSubfolders;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("textures", "Textures (DTD) dataset", register_components)
