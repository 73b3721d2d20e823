// Hendrycks et al.'s ImageNet variants that pytorch-ood reads, one folder per ImageNet
// wnid (200 each):
// - ImageNet-A ("Natural Adversarial Examples"): 7500 real photographs that ResNet-50
//   classifiers misclassify, a test of robustness (and, with the set's role in a
//   pipeline, an OOD set for ImageNet models);
// - ImageNet-O (same paper): 2000 photographs of objects outside ImageNet-1k that
//   ResNet-50 classifiers confidently assign to ImageNet classes, an adversarially
//   filtered OOD set for ImageNet models;
// - ImageNet-R(endition) ("The Many Faces of Robustness"): 30000 renditions (art,
//   cartoons, graffiti, embroidery, sketches, toys, ...), a test of robustness to a shift
//   in style.
// They differ only in texts and archive, so this one source is built once per set; the
// define (OOD_IMAGENET_A, ...) says which (as cifar10-c's cifar_c.cpp).
//
// As pytorch-ood's ImageNetA/O/R: the archive <name>.tar (md5 checked) is extracted into
// root and read with torchvision's DatasetFolder semantics from root/<name>/<wnid>/:
// files ending exactly in ".jpg" or ".JPEG" (case-sensitive), decoded as stored (no RGB
// conversion), label = index of the wnid among the sorted class folders. The label is
// not -1: pytorch-ood leaves marking OOD to the caller, here the set's role.
#include <stdexcept>
#include <string>

#include "ood/data/image_folder_set.hpp"

#if defined(OOD_IMAGENET_A)
#define OOD_IMAGENET_VARIANT "imagenet-a"
#define OOD_IMAGENET_VARIANT_PLUGIN_SUMMARY "ImageNet-A dataset"
#elif defined(OOD_IMAGENET_O)
#define OOD_IMAGENET_VARIANT "imagenet-o"
#define OOD_IMAGENET_VARIANT_PLUGIN_SUMMARY "ImageNet-O dataset"
#elif defined(OOD_IMAGENET_R)
#define OOD_IMAGENET_VARIANT "imagenet-r"
#define OOD_IMAGENET_VARIANT_PLUGIN_SUMMARY "ImageNet-R dataset"
#else
#error "define one of OOD_IMAGENET_A, OOD_IMAGENET_O, OOD_IMAGENET_R"
#endif

namespace {

// What distinguishes one variant from another; its name is also its archive's stem and
// the archive's top folder.
struct ImagenetVariant {
  const char* name;
  const char* summary;
  const char* paper;
  const char* md5;
  const char* code;  // the GitHub repository of the set
};

constexpr const char* kNaturalAdversarialExamples =
    "Hendrycks, Zhao, Basart, Steinhardt, Song, Natural Adversarial Examples, CVPR 2021";

constexpr ImagenetVariant kVariants[] = {
    {"imagenet-a", "ImageNet-A: natural adversarial examples of 200 ImageNet classes, label = class folder index",
     kNaturalAdversarialExamples, "c3e55429088dc681f30d81f4726b6595", "github.com/hendrycks/natural-adv-examples"},
    {"imagenet-o",
     "ImageNet-O: adversarially filtered OOD images for ImageNet models (200 wnid folders), label = folder index",
     kNaturalAdversarialExamples, "86bd7a50c1c4074fb18fc5f219d6d50b", "github.com/hendrycks/natural-adv-examples"},
    {"imagenet-r", "ImageNet-R: renditions of 200 ImageNet classes, label = class folder index",
     "Hendrycks, Basart, Mu, Kadavath, Wang, Dorundo, Desai, Zhu, Parajuli, Guo, Song, Steinhardt, Gilmer, The "
     "Many Faces of Robustness: A Critical Analysis of Out-of-Distribution Generalization, ICCV 2021",
     "a61312130a589d0ca1a8fca1f2bd3337", "github.com/hendrycks/imagenet-r"},
};

const ImagenetVariant& variant(const std::string& name) {
  for (const ImagenetVariant& v : kVariants)
    if (name == v.name) return v;
  throw std::logic_error("no ImageNet variant " + name);
}

ood::data::ImageFolderSet declare(const ImagenetVariant& variant) {
  const std::string name = variant.name;
  const std::string url = "people.eecs.berkeley.edu/~hendrycks/" + name + ".tar";
  ood::data::ImageFolderSet set;
  set.info.name = name;
  set.info.summary = variant.summary;
  set.info.paper = variant.paper;
  set.info.year = 2021;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size, no RGB conversion; use "
      "resize or center-crop to batch them), label = index of the wnid among the sorted class folders "
      "(0..199 for the full set; NOT the ImageNet-1k index and NOT -1, as pytorch-ood: an OOD set is marked "
      "by its role in the pipeline). info().classes are the wnids.\n"
      "Layout: root/" + name + "/<wnid>/<file>, files ending exactly in .jpg or .JPEG (torchvision's "
      "DatasetFolder order: classes sorted, files sorted).\n"
      "Source: " + url + " (md5 " + variant.md5 + "; " + variant.code +
      ", MIT-licensed code; the images were collected from the web and remain their owners': research use).";
  set.root_doc = "folder holding " + name + "/ (or where to download it)";
  set.download_doc = "download and extract the archive when the data is missing";
  ood::download::Resource archive;
  archive.file_name = name + ".tar";
  archive.urls = {"https://" + url};
  archive.md5 = variant.md5;
  set.source = [archive, name](const std::filesystem::path&) {
    return ood::download::DataSource{name, {archive}, {name}};
  };
  set.folder = name;
  set.layout = ood::data::ImageFolderSet::Layout::ClassSubfolders;
  // pytorch-ood's is_valid_file is str.endswith(".jpg") or str.endswith(".JPEG"):
  // ".jpeg" or ".JPG" files are not samples.
  set.list.extensions = {".jpg", ".JPEG"};
  set.list.case_sensitive = true;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare(variant(OOD_IMAGENET_VARIANT)));
}

}  // namespace

OOD_PLUGIN(OOD_IMAGENET_VARIANT, OOD_IMAGENET_VARIANT_PLUGIN_SUMMARY, register_components)
