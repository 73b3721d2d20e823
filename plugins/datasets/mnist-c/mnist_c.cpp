// MNIST-C (Mu & Gilmer, 2019): the MNIST images under 15 corruptions (plus the identity),
// for robustness and OOD benchmarks.
//
// As pytorch-ood's MNISTC: mnist_c.zip is extracted into root, giving
// root/mnist_c/<corruption>/{train,test}_{images,labels}.npy (images uint8
// [N, 28, 28, 1]); "all" concatenates the 16 folders in pytorch-ood's order. pytorch-ood's
// "leftovers" split (marked TODO there, its file layout unconfirmed) is not offered.
// Samples: float32 [1, 28, 28] in [0, 1] and the stored digit label.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCorruptions = {
    "brightness", "canny_edges",   "dotted_line", "fog",   "glass_blur", "identity", "impulse_noise", "motion_blur",
    "rotate",     "scale",         "shear",       "shot_noise", "spatter", "stripe", "translate",  "zigzag"};

ood::download::DataSource source(const std::string& subset, const std::string& split) {
  ood::download::Resource archive;
  archive.file_name = "mnist_c.zip";
  archive.urls = {"https://zenodo.org/record/3239543/files/mnist_c.zip"};
  // Declared by pytorch-ood but never checked there; checked here.
  archive.md5 = "4b34b33045869ee6d424616cd3a65da3";
  ood::download::DataSource s{"mnist-c", {archive}, {}};
  for (const auto& c : kCorruptions)
    if (subset == "all" || subset == c) {
      s.expected.push_back("mnist_c/" + c + "/" + split + "_images.npy");
      s.expected.push_back("mnist_c/" + c + "/" + split + "_labels.npy");
    }
  return s;
}

std::shared_ptr<ood::Dataset> make_mnist_c(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string subset = p.get_string("subset");
  const std::string split = p.get_string("split");
  ood::download::prepare(root, source(subset, split), p.get_bool("download"));
  std::vector<at::Tensor> images, labels;
  for (const auto& c : kCorruptions) {
    if (subset != "all" && subset != c) continue;
    const fs::path image_file = root / "mnist_c" / c / (split + "_images.npy");
    const fs::path label_file = root / "mnist_c" / c / (split + "_labels.npy");
    at::Tensor x = ood::io::read_npy(image_file);
    if (x.dim() == 4 && x.size(3) == 1) x = x.squeeze(3);
    if (x.scalar_type() != at::kByte || x.dim() != 3 || x.size(1) != 28 || x.size(2) != 28)
      throw ood::FileError("mnist-c: " + image_file.string() + ": expected uint8 images [N, 28, 28, 1]");
    at::Tensor y = ood::io::read_npy(label_file);
    if (y.dim() != 1 || y.size(0) != x.size(0) || !at::isIntegralType(y.scalar_type(), false))
      throw ood::FileError("mnist-c: " + label_file.string() + ": expected " + std::to_string(x.size(0)) +
                           " integer labels (one per image of " + image_file.string() + ")");
    y = y.to(at::kLong);
    if (y.numel() > 0 && (y.min().item<std::int64_t>() < 0 || y.max().item<std::int64_t>() > 9))
      throw ood::FileError("mnist-c: " + label_file.string() + ": labels must be 0..9");
    images.push_back(x);
    labels.push_back(y);
  }
  ood::data::ArrayDatasetOptions options;
  options.dataset = "mnist-c";
  options.layout = ood::data::ArrayLayout::NHW;
  return ood::data::array_dataset(at::cat(images), at::cat(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "mnist-c";
  info.summary = "MNIST-C: MNIST under 15 corruptions (and the identity)";
  info.paper = "Mu & Gilmer, MNIST-C: A Robustness Benchmark for Computer Vision, arXiv:1906.02337";
  info.year = 2019;
  info.doc =
      "Samples: float32 [1, 28, 28] in [0, 1] and the stored digit label 0..9 (not -1).\n"
      "Layout: root/mnist_c/<corruption>/<split>_{images,labels}.npy (pytorch-ood's), from mnist_c.zip "
      "(zenodo.org, CC BY 4.0). \"all\" concatenates the 16 folders in pytorch-ood's order.";
  std::vector<std::string> subsets = kCorruptions;
  subsets.push_back("all");
  info.params = {
      ood::data::root_param("folder holding mnist_c/ (or where to download it)"),
      ood::ParamSpec::choice("subset", subsets, "the corruption, or all of them").default_value("all"),
      ood::ParamSpec::choice("split", {"train", "test"}, "60000 training or 10000 test images per corruption")
          .default_value("test"),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_mnist_c);
}

}  // namespace

OOD_PLUGIN("mnist-c", "MNIST-C corruption dataset", register_components)
