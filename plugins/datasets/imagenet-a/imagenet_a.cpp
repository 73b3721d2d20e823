// ImageNet-A (Hendrycks et al., "Natural Adversarial Examples"): 7500 real photographs of
// 200 ImageNet classes that ResNet-50 classifiers misclassify, a test of robustness
// (and, with the set's role in a pipeline, an OOD set for ImageNet models).
//
// As pytorch-ood's ImageNetA: the archive imagenet-a.tar (md5 checked) is extracted into
// root and read with torchvision's DatasetFolder semantics from root/imagenet-a/<wnid>/:
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

constexpr const char* kDataset = "imagenet-a";
constexpr const char* kFolder = "imagenet-a";

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "imagenet-a.tar";
  archive.urls = {"https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar"};
  archive.md5 = "c3e55429088dc681f30d81f4726b6595";
  return {kDataset, {archive}, {kFolder}};
}

std::shared_ptr<ood::Dataset> make_imagenet_a(const ood::Params& p, ood::Context& context) {
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
  info.summary = "ImageNet-A: natural adversarial examples of 200 ImageNet classes, label = class folder index";
  info.paper = "Hendrycks, Zhao, Basart, Steinhardt, Song, Natural Adversarial Examples, CVPR 2021";
  info.year = 2021;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size, no RGB conversion; use "
      "resize or center-crop to batch them), label = index of the wnid among the sorted class folders "
      "(0..199 for the full set; NOT the ImageNet-1k index and NOT -1, as pytorch-ood: an OOD set is marked "
      "by its role in the pipeline). info().classes are the wnids.\n"
      "Layout: root/imagenet-a/<wnid>/<file>, files ending exactly in .jpg or .JPEG (torchvision's "
      "DatasetFolder order: classes sorted, files sorted).\n"
      "Source: people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar (md5 c3e55429088dc681f30d81f4726b6595; "
      "github.com/hendrycks/natural-adv-examples, MIT-licensed code; the images were collected from the web "
      "and remain their owners': research use).";
  info.params = {
      ood::data::root_param("folder holding imagenet-a/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_imagenet_a);
}

}  // namespace

OOD_PLUGIN("imagenet-a", "ImageNet-A dataset", register_components)
