// CIFAR-100 (Krizhevsky, 2009): 60000 32x32 colour images in 100 classes, 50000 for
// training and 10000 for testing, in the "python version" files.
//
// torchvision's layout: cifar-100-python.tar.gz extracted into root gives
// root/cifar-100-python/{train, test, meta}, Python 2 pickles of a dict with b"data"
// (uint8 [N, 3072]: R, G, B planes of 32x32) and b"fine_labels" (the 100 classes
// torchvision uses; b"coarse_labels" are ignored), read by ood's strict pickle reader
// (ood/io/python_pickle.hpp). Samples: float32 [3, 32, 32] in [0, 1], label 0..99.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/python_pickle.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "cifar-100-python.tar.gz";
  archive.urls = {"https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"};
  archive.md5 = "eb9058c3a382ffc7106e4002c42a8d85";
  return {"cifar100", {archive}, {"cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"}};
}

std::shared_ptr<ood::Dataset> make_cifar100(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path file = root / "cifar-100-python" / (p.get_bool("train") ? "train" : "test");
  const std::string what = "cifar100: " + file.string();
  const ood::io::PyValue batch = ood::io::read_python_pickle(file);
  const at::Tensor data = batch.at("data", what).as_array(what + ": \"data\"");
  if (data.scalar_type() != at::kByte || data.dim() != 2 || data.size(1) != 3072)
    throw ood::FileError(what + ": \"data\" must be a uint8 array [N, 3072]");
  const auto& list = batch.at("fine_labels", what).as_list(what + ": \"fine_labels\"");
  if (static_cast<std::int64_t>(list.size()) != data.size(0))
    throw ood::FileError(what + ": " + std::to_string(list.size()) + " labels for " + std::to_string(data.size(0)) +
                         " images");
  at::Tensor labels = at::empty({data.size(0)}, at::kLong);
  auto* out = labels.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < list.size(); ++i) {
    out[i] = list[i].as_int(what + ": label " + std::to_string(i));
    if (out[i] < 0 || out[i] > 99) throw ood::FileError(what + ": label " + std::to_string(i) + " is not 0..99");
  }
  const fs::path meta = root / "cifar-100-python" / "meta";
  const ood::io::PyValue meta_value = ood::io::read_python_pickle(meta);
  const std::string meta_what = "cifar100: " + meta.string();
  ood::data::ArrayDatasetOptions options;
  options.dataset = "cifar100";
  options.layout = ood::data::ArrayLayout::NCHW;
  for (const auto& n : meta_value.at("fine_label_names", meta_what).as_list(meta_what + ": \"fine_label_names\""))
    options.classes.push_back(n.as_text(meta_what + ": a label name"));
  if (options.classes.size() != 100) throw ood::FileError(meta_what + ": expected 100 fine label names");
  return ood::data::array_dataset(data.reshape({-1, 3, 32, 32}), labels, options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "cifar100";
  info.summary = "CIFAR-100: 32x32 colour images, 100 classes";
  info.paper = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009";
  info.year = 2009;
  info.doc =
      "Samples: float32 [3, 32, 32] in [0, 1] (torchvision's ToTensor()) and the fine label 0..99.\n"
      "Layout: root/cifar-100-python/ (torchvision's), from cifar-100-python.tar.gz "
      "(cs.toronto.edu/~kriz/cifar.html).";
  info.params = {
      ood::data::root_param("folder holding cifar-100-python/ (or where to download it)"),
      ood::ParamSpec::boolean("train", "the 50000 training images (false: the 10000 test images)")
          .default_value(true),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_cifar100);
}

}  // namespace

OOD_PLUGIN("cifar100", "CIFAR-100 dataset", register_components)
