// 300K random images (Hendrycks et al., 2019): 300000 32x32 images sampled from
// 80 Million Tiny Images, the auxiliary outliers of outlier exposure.
//
// As pytorch-ood's TinyImages300k: root/300K_random_images.npy (uint8 [N, 32, 32, 3]),
// downloaded as it is (MD5 checked), every label -1. Samples: float32 [3, 32, 32] in [0, 1].
// The whole 80 Million Tiny Images set (pytorch-ood's TinyImages) was withdrawn by its
// authors in 2020 (offensive labels and images); ood offers no loader for it.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kFile = "300K_random_images.npy";

ood::download::DataSource source() {
  ood::download::Resource file;
  file.file_name = kFile;
  file.urls = {std::string("https://people.eecs.berkeley.edu/~hendrycks/") + kFile};
  file.md5 = "64ca64357de98351f28454274a112dc3";
  file.unpack = ood::download::Resource::Unpack::None;
  return {"tiny-images-300k", {file}, {kFile}};
}

std::shared_ptr<ood::Dataset> make_tiny_images(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path file = root / kFile;
  const at::Tensor x = ood::io::read_npy(file);
  if (x.scalar_type() != at::kByte || x.dim() != 4 || x.size(3) != 3)
    throw ood::FileError("tiny-images-300k: " + file.string() + ": expected uint8 images [N, H, W, 3]");
  ood::data::ArrayDatasetOptions options;
  options.dataset = "tiny-images-300k";
  options.layout = ood::data::ArrayLayout::NHWC;
  return ood::data::array_dataset(x, at::full({x.size(0)}, -1, at::kLong), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "tiny-images-300k";
  info.summary = "300K random TinyImages: auxiliary outliers (label -1)";
  info.paper = "Hendrycks, Mazeika & Dietterich, Deep Anomaly Detection with Outlier Exposure, ICLR 2019";
  info.year = 2019;
  info.doc =
      "Samples: float32 [3, 32, 32] in [0, 1], label -1.\n"
      "Layout: root/300K_random_images.npy (pytorch-ood's), from people.eecs.berkeley.edu/~hendrycks. "
      "Held in memory (0.9 GB), as pytorch-ood. Derived from 80 Million Tiny Images, withdrawn by its "
      "authors in 2020: check that your use is acceptable.";
  info.params = {
      ood::data::root_param("folder holding 300K_random_images.npy (or where to download it)"),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_tiny_images);
}

}  // namespace

OOD_PLUGIN("tiny-images-300k", "300K random TinyImages", register_components)
