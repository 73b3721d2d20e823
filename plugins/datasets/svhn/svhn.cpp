// SVHN (Netzer et al., 2011): 32x32 crops of house numbers from Google Street View, the
// "cropped digits" format: 73257 training, 26032 test and 531131 extra images.
//
// torchvision's layout: root/{train,test,extra}_32x32.mat (MATLAB level 5 files, read with
// libmatio), X uint8 [32, 32, 3, N] and y [N, 1] with the digit 0 stored as 10 (mapped to
// 0 as torchvision does). Samples: float32 [3, 32, 32] in [0, 1], label 0..9.
#include <ATen/ATen.h>

#include <map>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/mat.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source(const std::string& split) {
  static const std::map<std::string, std::string> md5 = {{"train", "e26dedcc434d2e4c54c9b2d4a06d8373"},
                                                         {"test", "eb5a983be6a315427106f1b164d9cef3"},
                                                         {"extra", "a93ce644f1a588dc4d68dda5feec44a7"}};
  ood::download::Resource file;
  file.file_name = split + "_32x32.mat";
  file.urls = {"http://ufldl.stanford.edu/housenumbers/" + file.file_name};
  file.md5 = md5.at(split);
  file.unpack = ood::download::Resource::Unpack::None;
  return {"svhn", {file}, {file.file_name}};
}

std::shared_ptr<ood::Dataset> make_svhn(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string split = p.get_string("split");
  ood::download::prepare(root, source(split), p.get_bool("download"));
  const fs::path file = root / (split + "_32x32.mat");
  const at::Tensor x = ood::io::read_mat_variable(file, "X");
  const at::Tensor y = ood::io::read_mat_variable(file, "y");
  const std::string what = "svhn: " + file.string();
  if (x.scalar_type() != at::kByte || x.dim() != 4 || x.size(0) != 32 || x.size(1) != 32 || x.size(2) != 3)
    throw ood::FileError(what + ": X must be uint8 [32, 32, 3, N]");
  if (y.numel() != x.size(3))
    throw ood::FileError(what + ": y has " + std::to_string(y.numel()) + " labels for " + std::to_string(x.size(3)) +
                         " images");
  at::Tensor labels = y.reshape({-1}).to(at::kDouble);
  if (labels.numel() > 0 &&
      (!labels.eq(labels.round()).all().item<bool>() || labels.min().item<double>() < 0 || labels.max().item<double>() > 10))
    throw ood::FileError(what + ": y must hold the digits 1..10 (10 for 0)");
  labels = labels.to(at::kLong).remainder(10);  // 10 -> 0, as torchvision
  ood::data::ArrayDatasetOptions options;
  options.dataset = "svhn";
  options.layout = ood::data::ArrayLayout::NCHW;
  options.classes = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  // MATLAB's [H, W, C, N] -> [N, C, H, W].
  return ood::data::array_dataset(x.permute({3, 2, 0, 1}).contiguous(), labels, options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "svhn";
  info.summary = "SVHN: 32x32 house-number digits from Street View, 10 classes";
  info.paper = "Netzer et al., Reading Digits in Natural Images with Unsupervised Feature Learning, NIPS workshop 2011";
  info.year = 2011;
  info.doc =
      "Samples: float32 [3, 32, 32] in [0, 1] (torchvision's ToTensor()) and the label 0..9.\n"
      "Layout: root/<split>_32x32.mat (torchvision's). Source: ufldl.stanford.edu/housenumbers "
      "(non-commercial use only).";
  info.params = {
      ood::data::root_param("folder holding <split>_32x32.mat (or where to download it)"),
      ood::ParamSpec::choice("split", {"train", "test", "extra"}, "73257 training, 26032 test or 531131 extra images")
          .default_value("train"),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_svhn);
}

}  // namespace

OOD_PLUGIN("svhn", "SVHN dataset", register_components)
