// SuMNIST (Kirchheim et al.): 56x56 images of four MNIST digits each; normal images' digits
// sum to 20, anomalies' do not. An anomaly detection benchmark.
//
// As pytorch-ood's SuMNIST: six .npz files (key "arr_0") in root/sumnist/:
// {x,y,b}-{train,test}.npz with x float32 [N, 56, 56] of pixel values 0..255, y the four
// digits [N, 4] and b their boxes. Samples: float32 [3, 56, 56] in [0, 1] (the grey image
// repeated, as pytorch-ood; divided by 255, the ToTensor convention, where pytorch-ood
// keeps 0..255) and the image label 0 (sum 20) or -1 (anomaly). pytorch-ood's "anomaly"
// target is always -1 because of a chained assignment; here it is what its code
// intends. The digits and boxes (a detection target) are not part of the sample.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source() {
  static const std::vector<std::pair<std::string, std::string>> files = {
      {"b-test.npz", "85a544301eff979e252b8946e31fd795"},  {"b-train.npz", "44b6208a8675df1a78c981b5ad8c4e50"},
      {"x-test.npz", "7db6727ec075cca1bb4dd0881087ac57"},  {"x-train.npz", "c087f1c74a6f7ffcad9956be6f99cf10"},
      {"y-test.npz", "7239555b3d809657c06fbbc8da6f3e5e"},  {"y-train.npz", "c6c94eb5ed7ebbe1c466abb14712e807"}};
  ood::download::DataSource s;
  s.dataset = "sumnist";
  for (const auto& [name, md5] : files) {
    ood::download::Resource r;
    r.file_name = name;
    r.urls = {"https://files.kondas.de/sumnist/" + name};
    r.md5 = md5;
    r.unpack = ood::download::Resource::Unpack::None;
    r.folder = "sumnist";
    r.provides = {"sumnist/" + name};
    s.resources.push_back(r);
    s.expected.push_back("sumnist/" + name);
  }
  return s;
}

std::shared_ptr<ood::Dataset> make_sumnist(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const std::string split = p.get_bool("train") ? "train" : "test";
  const fs::path x_file = root / "sumnist" / ("x-" + split + ".npz");
  const fs::path y_file = root / "sumnist" / ("y-" + split + ".npz");
  const at::Tensor x = ood::io::read_npz(x_file, "arr_0");
  if (x.dim() != 3 || x.size(1) != 56 || x.size(2) != 56 || !at::isFloatingType(x.scalar_type()))
    throw ood::FileError("sumnist: " + x_file.string() + ": expected float images [N, 56, 56]");
  const at::Tensor digits = ood::io::read_npz(y_file, "arr_0");
  if (digits.dim() != 2 || digits.size(0) != x.size(0) || digits.size(1) != 4)
    throw ood::FileError("sumnist: " + y_file.string() + ": expected four digits per image, [" +
                         std::to_string(x.size(0)) + ", 4]");
  const at::Tensor sums = digits.to(at::kLong).sum(1);
  const at::Tensor labels = at::where(sums == 20, at::zeros_like(sums), at::full_like(sums, -1));
  ood::data::ArrayDatasetOptions options;
  options.dataset = "sumnist";
  options.layout = ood::data::ArrayLayout::NCHW;
  // The grey image repeated on three channels, as pytorch-ood.
  return ood::data::array_dataset(x.to(at::kFloat).unsqueeze(1).expand({-1, 3, -1, -1}).contiguous(), labels,
                                  options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "sumnist";
  info.summary = "SuMNIST: four MNIST digits per image; anomalies do not sum to 20 (label -1)";
  info.paper = "Kirchheim, Gonschorek & Ortmeier, Out-of-Distribution Detection with Logical Reasoning, WACV 2024";
  info.year = 2024;
  info.doc =
      "Samples: float32 [3, 56, 56] in [0, 1] and the label 0 (digits sum to 20) or -1 (anomaly).\n"
      "Layout: root/sumnist/{x,y,b}-{train,test}.npz (pytorch-ood's), from files.kondas.de/sumnist. "
      "Training images are all normal; the test set has 1500 anomalies in 10000.";
  info.params = {
      ood::data::root_param("folder holding sumnist/ (or where to download it)"),
      ood::ParamSpec::boolean("train", "the 60000 training images (false: the 10000 test images)")
          .default_value(true),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_sumnist);
}

}  // namespace

OOD_PLUGIN("sumnist", "SuMNIST dataset", register_components)
