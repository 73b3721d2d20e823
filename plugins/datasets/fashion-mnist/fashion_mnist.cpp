// Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 28x28 grey images of 10 clothing
// classes, 60000 for training and 10000 for testing, stored as IDX files.
//
// Samples are what torchvision's FashionMNIST gives after ToTensor(): float32
// [1, 28, 28] in [0, 1], with the class label. The default root is where Debian's
// dataset-fashion-mnist package installs the original .gz files; torchvision's layout
// (<root>/FashionMNIST/raw) and uncompressed files are found too.
#include <ATen/ATen.h>

#include <array>

#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/io/idx.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// The file for `base` (e.g. "train-images-idx3-ubyte") under root, in any known layout.
fs::path find_file(const fs::path& root, const std::string& base) {
  const std::array<fs::path, 2> dirs = {root, root / "FashionMNIST" / "raw"};
  for (const auto& dir : dirs)
    for (const char* suffix : {".gz", ""}) {
      std::error_code ec;
      const fs::path candidate = dir / (base + suffix);
      if (fs::is_regular_file(candidate, ec)) return candidate;
    }
  throw ood::FileError(root.string() + ": Fashion-MNIST file '" + base +
                       "(.gz)' not found (also looked in FashionMNIST/raw); install Debian's "
                       "dataset-fashion-mnist package or set \"root\"");
}

class FashionMnist final : public ood::Dataset {
 public:
  FashionMnist(const fs::path& root, const std::string& split) {
    const std::string prefix = split == "train" ? "train" : "t10k";
    const fs::path image_file = find_file(root, prefix + "-images-idx3-ubyte");
    const fs::path label_file = find_file(root, prefix + "-labels-idx1-ubyte");
    images_ = ood::io::read_idx(image_file);
    labels_ = ood::io::read_idx(label_file);
    if (images_.scalar_type() != at::kByte || images_.dim() != 3 || images_.size(1) != 28 || images_.size(2) != 28)
      throw ood::FileError(image_file.string() + ": expected uint8 images [N, 28, 28]");
    if (labels_.scalar_type() != at::kByte || labels_.dim() != 1)
      throw ood::FileError(label_file.string() + ": expected uint8 labels [N]");
    if (labels_.size(0) != images_.size(0))
      throw ood::FileError(label_file.string() + ": " + std::to_string(labels_.size(0)) + " labels for " +
                           std::to_string(images_.size(0)) + " images in " + image_file.string());
    labels_ = labels_.to(at::kLong);
    if (labels_.numel() > 0 && labels_.max().item<std::int64_t>() > 9)
      throw ood::FileError(label_file.string() + ": labels must be 0..9");
  }

  std::int64_t size() const override { return images_.size(0); }

  ood::Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw ood::InvalidArgument("fashion-mnist: index " + std::to_string(index) + " out of range [0, " +
                                 std::to_string(size()) + ")");
    return {images_[index].to(at::kFloat).div_(255.0f).unsqueeze(0), labels_[index].clone()};
  }

  ood::DatasetInfo info() const override {
    ood::DatasetInfo i;
    i.classes = kClasses;
    i.input_shape = {1, 28, 28};
    return i;
  }

  at::Tensor labels() const override { return labels_.clone(); }

 private:
  at::Tensor images_;  // uint8 [N, 28, 28]
  at::Tensor labels_;  // int64 [N]
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "fashion-mnist";
  info.summary = "Fashion-MNIST: 28x28 grey images of 10 clothing classes";
  info.paper =
      "Xiao, Rasul & Vollgraf, Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
      "Learning Algorithms, arXiv:1708.07747";
  info.year = 2017;
  info.doc =
      "Samples: float32 [1, 28, 28] in [0, 1] (torchvision's ToTensor()) and the label 0..9.\n"
      "Reads the IDX files (.gz or plain) from root or root/FashionMNIST/raw.";
  info.params = {
      ood::ParamSpec::path("root", "directory with the IDX files")
          .default_value("/usr/share/datasets/fashion-mnist"),
      ood::ParamSpec::choice("split", {"train", "test"}, "60000 training or 10000 test images")
          .default_value("train"),
  };
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<FashionMnist>(p.get_path("root"), p.get_string("split"));
  });
}

}  // namespace

OOD_PLUGIN("fashion-mnist", "Fashion-MNIST dataset", register_components)
