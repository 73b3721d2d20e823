// CIFAR-10 (Krizhevsky, 2009): 60000 32x32 colour images in 10 classes, 50000 for
// training and 10000 for testing, in the "python version" batches.
//
// torchvision's layout: cifar-10-python.tar.gz extracted into root gives
// root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}, Python 2 pickles
// of a dict with b"data" (uint8 [N, 3072]: the R, G and B planes of 32x32, row-major) and
// b"labels". They are read by ood's strict pickle reader (ood/io/python_pickle.hpp), which
// builds NumPy arrays and plain values and calls nothing. Samples are what torchvision
// gives after ToTensor(): float32 [3, 32, 32] in [0, 1], label 0..9.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/python_pickle.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTrainBatches = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                                "data_batch_5"};

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "cifar-10-python.tar.gz";
  archive.urls = {"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"};
  archive.md5 = "c58f30108f718f92721af3b95e74349a";
  ood::download::DataSource s{"cifar10", {archive}, {}};
  for (const auto& b : kTrainBatches) s.expected.push_back("cifar-10-batches-py/" + b);
  s.expected.push_back("cifar-10-batches-py/test_batch");
  s.expected.push_back("cifar-10-batches-py/batches.meta");
  return s;
}

// One batch file: images uint8 [N, 3, 32, 32] and labels int64 [N].
std::pair<at::Tensor, at::Tensor> read_batch(const fs::path& file) {
  const ood::io::PyValue batch = ood::io::read_python_pickle(file);
  const std::string what = "cifar10: " + file.string();
  const at::Tensor data = batch.at("data", what).as_array(what + ": \"data\"");
  if (data.scalar_type() != at::kByte || data.dim() != 2 || data.size(1) != 3072)
    throw ood::FileError(what + ": \"data\" must be a uint8 array [N, 3072]");
  const auto& list = batch.at("labels", what).as_list(what + ": \"labels\"");
  if (static_cast<std::int64_t>(list.size()) != data.size(0))
    throw ood::FileError(what + ": " + std::to_string(list.size()) + " labels for " + std::to_string(data.size(0)) +
                         " images");
  at::Tensor labels = at::empty({data.size(0)}, at::kLong);
  auto* out = labels.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < list.size(); ++i) {
    out[i] = list[i].as_int(what + ": label " + std::to_string(i));
    if (out[i] < 0 || out[i] > 9) throw ood::FileError(what + ": label " + std::to_string(i) + " is not 0..9");
  }
  return {data.reshape({-1, 3, 32, 32}), labels};
}

std::vector<std::string> class_names(const fs::path& meta) {
  const ood::io::PyValue value = ood::io::read_python_pickle(meta);
  const std::string what = "cifar10: " + meta.string();
  std::vector<std::string> names;
  for (const auto& n : value.at("label_names", what).as_list(what + ": \"label_names\""))
    names.push_back(n.as_text(what + ": a label name"));
  if (names.size() != 10) throw ood::FileError(what + ": expected 10 label names");
  return names;
}

std::shared_ptr<ood::Dataset> make_cifar10(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path folder = root / "cifar-10-batches-py";
  std::vector<at::Tensor> images, labels;
  for (const auto& b : p.get_bool("train") ? kTrainBatches : std::vector<std::string>{"test_batch"}) {
    auto [x, y] = read_batch(folder / b);
    images.push_back(x);
    labels.push_back(y);
  }
  ood::data::ArrayDatasetOptions options;
  options.dataset = "cifar10";
  options.layout = ood::data::ArrayLayout::NCHW;
  options.classes = class_names(folder / "batches.meta");
  return ood::data::array_dataset(at::cat(images), at::cat(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "cifar10";
  info.summary = "CIFAR-10: 32x32 colour images, 10 classes";
  info.paper = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009";
  info.year = 2009;
  info.doc =
      "Samples: float32 [3, 32, 32] in [0, 1] (torchvision's ToTensor()) and the label 0..9.\n"
      "Layout: root/cifar-10-batches-py/ (torchvision's), from cifar-10-python.tar.gz "
      "(cs.toronto.edu/~kriz/cifar.html).";
  info.params = {
      ood::data::root_param("folder holding cifar-10-batches-py/ (or where to download it)"),
      ood::ParamSpec::boolean("train", "the 50000 training images (false: the 10000 test images)")
          .default_value(true),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_cifar10);
}

}  // namespace

OOD_PLUGIN("cifar10", "CIFAR-10 dataset", register_components)
