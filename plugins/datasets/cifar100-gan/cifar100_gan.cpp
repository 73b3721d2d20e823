// CIFAR100-GAN (Kirchheim & Ortmeier, GOE, 2022): images sampled from low-likelihood
// regions of a BigGAN trained on CIFAR-100, used as auxiliary outliers.
//
// As pytorch-ood's CIFAR100GAN: root/samples-<sigma>.npz (key "x", uint8 [N, 3, 32, 32],
// channel first), downloaded as it is (MD5 checked), every label -1.
// Samples: float32 [3, 32, 32] in [0, 1].
#include <ATen/ATen.h>

#include <cmath>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source(const std::string& sigma) {
  ood::download::Resource file;
  file.file_name = "samples-" + sigma + ".npz";
  file.urls = {"https://files.kondas.de/goe-data/" + file.file_name};
  file.md5 = sigma == "50.0" ? "95f1365e4c6e188595bb8476d43a82d9" : "f130876edbbc13ab2bdc6f7caaa1180d";
  file.unpack = ood::download::Resource::Unpack::None;
  return {"cifar100-gan", {file}, {file.file_name}};
}

std::shared_ptr<ood::Dataset> make_gan(const ood::Params& p, ood::Context& context) {
  const double sigma_value = p.get_float("sigma");
  if (sigma_value != 50.0 && sigma_value != 2.0)
    throw ood::InvalidArgument("cifar100-gan: sigma must be 50.0 or 2.0 (the two published sample sets), got " +
                               std::to_string(sigma_value));
  const std::string sigma = sigma_value == 50.0 ? "50.0" : "2.0";
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(sigma), p.get_bool("download"));
  const fs::path file = root / ("samples-" + sigma + ".npz");
  const at::Tensor x = ood::io::read_npz(file, "x");
  if (x.scalar_type() != at::kByte || x.dim() != 4 || x.size(1) != 3)
    throw ood::FileError("cifar100-gan: " + file.string() + ": \"x\" must be uint8 images [N, 3, H, W]");
  ood::data::ArrayDatasetOptions options;
  options.dataset = "cifar100-gan";
  options.layout = ood::data::ArrayLayout::NCHW;
  return ood::data::array_dataset(x, at::full({x.size(0)}, -1, at::kLong), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "cifar100-gan";
  info.summary = "CIFAR100-GAN: BigGAN samples from low-likelihood regions, outliers (label -1)";
  info.paper = "Kirchheim & Ortmeier, On Outlier Exposure with Generative Models, NeurIPS ML Safety Workshop 2022";
  info.year = 2022;
  info.doc =
      "Samples: float32 [3, 32, 32] in [0, 1], label -1.\n"
      "Layout: root/samples-<sigma>.npz with key \"x\" (pytorch-ood's), from files.kondas.de/goe-data.";
  info.params = {
      ood::data::root_param("folder holding samples-<sigma>.npz (or where to download it)"),
      ood::ParamSpec::real("sigma", "the sample set: 50.0 or 2.0").default_value(50.0),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_gan);
}

}  // namespace

OOD_PLUGIN("cifar100-gan", "CIFAR100-GAN outlier samples", register_components)
