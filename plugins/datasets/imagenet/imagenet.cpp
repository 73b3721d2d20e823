// ImageNet-1k (ILSVRC2012) from a folder the user prepared: the in-distribution set of
// the ImageNet OOD benchmarks. Never downloaded: image-net.org hands the archives out
// only to registered users who accept its terms of access.
//
// As torchvision's ImageNet (which pytorch-ood's ImageNet benchmarks use): ImageFolder
// over root/<split>/<wnid>/, i.e. classes are the sorted wnid folders (label = index,
// 0..999 for the full set), files found recursively in each with torchvision's image
// extensions (case-insensitive), decoded and converted to RGB as torchvision's default
// loader does (PIL's convert("RGB"): a few ILSVRC images are greyscale or CMYK).
// torchvision builds this tree from the archives on first use; here it must exist.
#include "ood/data/image_files.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* kDataset = "imagenet";

// What to do when the tree is missing: the published archives (names and md5s as
// torchvision checks them) and the layout they must be unpacked to.
std::string how_to_obtain(const fs::path& root) {
  return "ImageNet cannot be downloaded automatically: obtain ILSVRC2012_img_train.tar (md5 "
         "1d675b47d978889d74fa0da5fadfb00e), ILSVRC2012_img_val.tar (md5 29b22e2961454d5413ddabcf34fc5622) "
         "and ILSVRC2012_devkit_t12.tar.gz (md5 fa75699e90414af021442c21a62c3abf) from https://image-net.org "
         "(registration and acceptance of its terms of access required), and unpack them to " +
         (root / "train").string() + "/<wnid>/*.JPEG and " + (root / "val").string() +
         "/<wnid>/*.JPEG (the layout torchvision.datasets.ImageNet(root, split) creates from those three "
         "archives; the validation images sorted into wnid folders by the devkit's ground truth)";
}

std::shared_ptr<ood::Dataset> make_imagenet(const ood::Params& p, ood::Context&) {
  const fs::path root = p.get_path("root");
  const std::string split = p.get_string("split");
  const fs::path folder = root / split;
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw ood::FileError(std::string(kDataset) + ": data not found: " + folder.string() + " is missing. " +
                         how_to_obtain(root));
  ood::data::ListOptions options;
  options.extensions = ood::data::image_extensions();
  ood::data::FolderClasses classes;
  try {
    classes = ood::data::folder_classes(folder, options);
  } catch (const ood::FileError& e) {
    throw ood::FileError(std::string(kDataset) + ": " + e.what());
  }
  ood::data::ImageFilesOptions image_options;
  image_options.dataset = kDataset;
  image_options.mode = ood::io::ImageMode::Rgb;
  image_options.classes = classes.classes;
  image_options.folder = folder;
  return ood::data::image_files_dataset(std::move(classes.files), std::move(classes.labels), image_options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "ImageNet-1k (ILSVRC2012) train or val from a local folder, label = wnid index";
  info.paper = "Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV 2015";
  info.year = 2015;
  info.doc =
      "Samples: float32 [3, H, W] in [0, 1], RGB (greyscale and CMYK JPEGs converted, as torchvision's "
      "default loader; images vary in size: use resize and center-crop to batch them), label = index of the "
      "wnid among the sorted class folders (0..999 with all 1000 classes, torchvision's ImageNet labels). "
      "info().classes are the wnids.\n"
      "Layout: root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG, the tree torchvision.datasets.ImageNet "
      "creates (files found recursively in each class folder, with torchvision's image extensions, "
      "case-insensitive; classes and files sorted as torchvision's ImageFolder).\n"
      "Source: not downloaded. ILSVRC2012_img_train.tar (md5 1d675b47d978889d74fa0da5fadfb00e), "
      "ILSVRC2012_img_val.tar (md5 29b22e2961454d5413ddabcf34fc5622) and ILSVRC2012_devkit_t12.tar.gz (md5 "
      "fa75699e90414af021442c21a62c3abf) from image-net.org, for registered users under its terms of access "
      "(non-commercial research and education; the images belong to their owners).";
  info.params = {
      ood::ParamSpec::path("root", "folder holding train/<wnid>/ and val/<wnid>/"),
      ood::ParamSpec::choice("split", {"train", "val"}, "which split to read").default_value("train"),
  };
  registrar.add_dataset(info, make_imagenet);
}

}  // namespace

OOD_PLUGIN("imagenet", "ImageNet-1k (ILSVRC2012) dataset from a local folder", register_components)
