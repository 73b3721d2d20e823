// Textures, the Describable Textures Dataset (DTD; Cimpoi et al., 2014): 5640 photographs
// of 47 texture classes, a standard OOD set for CIFAR and ImageNet models.
//
// As pytorch-ood's Textures: the archive dtd-r1.0.1.tar.gz (saved as
// textures-r1_0_1.tar.gz) is extracted into root, images are read from
// root/dtd/images/<class>/<file>, as stored (no RGB conversion), every label -1. Files
// are sorted (pytorch-ood's order depends on the filesystem).
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "textures-r1_0_1.tar.gz";
  archive.urls = {"https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"};
  archive.md5 = "fff73e5086ae6bdbea199a49dfb8a4c1";
  return {"textures", {archive}, {"dtd/images"}};
}

std::shared_ptr<ood::Dataset> make_textures(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  // One level deep, as pytorch-ood: images/<class>/<file>; files directly in images/
  // and deeper folders are not samples.
  std::vector<fs::path> files;
  for (const auto& cls : ood::data::list_subfolders(root / "dtd" / "images"))
    for (auto& f : ood::data::list_files(root / "dtd" / "images" / cls)) files.push_back(std::move(f));
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "textures";
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "textures";
  info.summary = "Textures (DTD): 5640 texture photographs, OOD (label -1)";
  info.paper = "Cimpoi et al., Describing Textures in the Wild, CVPR 2014";
  info.year = 2014;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (mostly RGB JPEGs of varying size; use resize "
      "or center-crop to batch them), label -1.\n"
      "Layout: root/dtd/images/<class>/<file> (torchvision's and pytorch-ood's). Source: "
      "robots.ox.ac.uk/~vgg/data/dtd (research use).";
  info.params = {
      ood::data::root_param("folder holding dtd/ (or where to download it)"),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_textures);
}

}  // namespace

OOD_PLUGIN("textures", "Textures (DTD) dataset", register_components)
