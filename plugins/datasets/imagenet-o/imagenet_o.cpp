// ImageNet-O (Hendrycks et al., "Natural Adversarial Examples"): 2000 photographs of
// objects outside ImageNet-1k that ResNet-50 classifiers confidently assign to ImageNet
// classes, filed under 200 wnid folders: an adversarially filtered OOD set for ImageNet
// models.
//
// As pytorch-ood's ImageNetO: the archive imagenet-o.tar (md5 checked) is extracted into
// root and read with torchvision's DatasetFolder semantics from root/imagenet-o/<wnid>/:
// files ending exactly in ".jpg" or ".JPEG" (case-sensitive), decoded as stored (no RGB
// conversion), label = index of the wnid among the sorted class folders. The label is
// not -1: pytorch-ood leaves marking OOD to the caller, here the set's role.
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* kDataset = "imagenet-o";
constexpr const char* kFolder = "imagenet-o";

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "imagenet-o.tar";
  archive.urls = {"https://people.eecs.berkeley.edu/~hendrycks/imagenet-o.tar"};
  archive.md5 = "86bd7a50c1c4074fb18fc5f219d6d50b";
  return {kDataset, {archive}, {kFolder}};
}

std::shared_ptr<ood::Dataset> make_imagenet_o(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  // pytorch-ood's is_valid_file is str.endswith(".jpg") or str.endswith(".JPEG"):
  // ".jpeg" or ".JPG" files are not samples.
  ood::data::ListOptions options;
  options.extensions = {".jpg", ".JPEG"};
  options.case_sensitive = true;
  ood::data::FolderClasses folder;
  try {
    folder = ood::data::folder_classes(root / kFolder, options);
  } catch (const ood::FileError& e) {
    throw ood::FileError(std::string(kDataset) + ": " + e.what());
  }
  ood::data::ImageFilesOptions image_options;
  image_options.dataset = kDataset;
  image_options.classes = folder.classes;
  image_options.folder = root / kFolder;
  return ood::data::image_files_dataset(std::move(folder.files), std::move(folder.labels), image_options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "ImageNet-O: adversarially filtered OOD images for ImageNet models (200 wnid folders), label = folder index";
  info.paper = "Hendrycks, Zhao, Basart, Steinhardt, Song, Natural Adversarial Examples, CVPR 2021";
  info.year = 2021;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size, no RGB conversion; use "
      "resize or center-crop to batch them), label = index of the wnid among the sorted class folders "
      "(0..199 for the full set; NOT the ImageNet-1k index and NOT -1, as pytorch-ood: an OOD set is marked "
      "by its role in the pipeline). info().classes are the wnids.\n"
      "Layout: root/imagenet-o/<wnid>/<file>, files ending exactly in .jpg or .JPEG (torchvision's "
      "DatasetFolder order: classes sorted, files sorted).\n"
      "Source: people.eecs.berkeley.edu/~hendrycks/imagenet-o.tar (md5 86bd7a50c1c4074fb18fc5f219d6d50b; "
      "github.com/hendrycks/natural-adv-examples, MIT-licensed code; the images were collected from the web "
      "and remain their owners': research use).";
  info.params = {
      ood::data::root_param("folder holding imagenet-o/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_imagenet_o);
}

}  // namespace

OOD_PLUGIN("imagenet-o", "ImageNet-O dataset", register_components)
