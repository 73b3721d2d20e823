// MNIST (LeCun et al., 1998): 28x28 grey images of handwritten digits, 60000 for
// training and 10000 for testing, as IDX files.
//
// torchvision's layout: root/MNIST/raw/<name> (decompressed; the .gz files are found too),
// downloaded from the first mirror that answers, each file's MD5 checked. Samples are what
// torchvision's MNIST gives after ToTensor(): float32 [1, 28, 28] in [0, 1], label 0..9.
// torchvision's legacy root/MNIST/processed/*.pt files are not read.
#include <ATen/ATen.h>

#include <array>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/idx.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kRaw = "MNIST/raw";

struct RawFile {
  const char* name;
  const char* md5;  // of the .gz file
};
const std::array<RawFile, 4> kFiles = {{
    {"train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    {"train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"},
    {"t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"},
    {"t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"},
}};

ood::download::DataSource source() {
  ood::download::DataSource s;
  s.dataset = "mnist";
  for (const auto& f : kFiles) {
    ood::download::Resource r;
    r.file_name = std::string(f.name) + ".gz";
    // torchvision's mirrors, in its order.
    r.urls = {"http://yann.lecun.com/exdb/mnist/" + r.file_name,
              "https://ossci-datasets.s3.amazonaws.com/mnist/" + r.file_name};
    r.md5 = f.md5;
    r.unpack = ood::download::Resource::Unpack::Decompress;
    r.folder = kRaw;
    r.provides = {std::string(kRaw) + "/" + f.name};
    s.resources.push_back(r);
    s.expected.push_back(std::string(kRaw) + "/" + f.name);
  }
  return s;
}

// The raw file, or its .gz when only that is there (read_idx reads both).
fs::path raw_file(const fs::path& root, const std::string& name) {
  std::error_code ec;
  const fs::path plain = root / kRaw / name;
  if (fs::is_regular_file(plain, ec)) return plain;
  return root / kRaw / (name + ".gz");
}

bool present(const fs::path& root) {
  std::error_code ec;
  for (const auto& f : kFiles)
    if (!fs::is_regular_file(raw_file(root, f.name), ec)) return false;
  return true;
}

std::shared_ptr<ood::Dataset> make_mnist(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  if (!present(root)) ood::download::prepare(root, source(), p.get_bool("download"));
  const std::string prefix = p.get_bool("train") ? "train" : "t10k";
  const fs::path image_file = raw_file(root, prefix + "-images-idx3-ubyte");
  const fs::path label_file = raw_file(root, prefix + "-labels-idx1-ubyte");
  const at::Tensor images = ood::io::read_idx(image_file);
  at::Tensor labels = ood::io::read_idx(label_file);
  if (images.scalar_type() != at::kByte || images.dim() != 3 || images.size(1) != 28 || images.size(2) != 28)
    throw ood::FileError("mnist: " + image_file.string() + ": expected uint8 images [N, 28, 28]");
  if (labels.scalar_type() != at::kByte || labels.dim() != 1 || labels.size(0) != images.size(0))
    throw ood::FileError("mnist: " + label_file.string() + ": expected " + std::to_string(images.size(0)) +
                         " uint8 labels (one per image of " + image_file.string() + ")");
  labels = labels.to(at::kLong);
  if (labels.numel() > 0 && labels.max().item<std::int64_t>() > 9)
    throw ood::FileError("mnist: " + label_file.string() + ": labels must be 0..9");
  ood::data::ArrayDatasetOptions options;
  options.dataset = "mnist";
  options.layout = ood::data::ArrayLayout::NHW;
  options.classes = {"0 - zero", "1 - one", "2 - two",   "3 - three", "4 - four",
                     "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"};  // torchvision's names
  return ood::data::array_dataset(images, labels, options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "mnist";
  info.summary = "MNIST: 28x28 grey handwritten digits, 10 classes";
  info.paper = "LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document recognition, 1998";
  info.year = 1998;
  info.doc =
      "Samples: float32 [1, 28, 28] in [0, 1] (torchvision's ToTensor()) and the label 0..9.\n"
      "Layout: root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (torchvision's; .gz files "
      "are read too). Source: yann.lecun.com/exdb/mnist (mirror ossci-datasets.s3.amazonaws.com).";
  info.params = {
      ood::data::root_param("folder holding MNIST/raw/ (or where to download it)"),
      ood::ParamSpec::boolean("train", "the 60000 training images (false: the 10000 test images)")
          .default_value(true),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_mnist);
}

}  // namespace

OOD_PLUGIN("mnist", "MNIST dataset", register_components)
