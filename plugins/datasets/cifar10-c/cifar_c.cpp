// CIFAR-10-C and CIFAR-100-C (Hendrycks & Dietterich, 2019): the CIFAR test images under
// 19 common corruptions at 5 severities. One loader for both, built twice
// (OOD_CIFAR_C_CLASSES = 10 or 100; the folders differ only in their meson.build).
//
// As pytorch-ood's CIFAR10C/CIFAR100C: the tar is extracted into root, giving
// root/CIFAR-10-C/<corruption>.npy (uint8 [50000, 32, 32, 3]: five blocks of the 10000
// test images, severity 1 to 5) and labels.npy (the labels of every corruption file).
// subset "all" concatenates the 19 corruptions in pytorch-ood's order (950000 images, held
// in memory as pytorch-ood does: 2.9 GB). New here: `severity` selects one block.
// Samples: float32 [3, 32, 32] in [0, 1] and the stored class label.
#include <ATen/ATen.h>

#include "ood/data/array_dataset.hpp"
#include "ood/data/dataset_params.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "ood/plugin.hpp"

#if OOD_CIFAR_C_CLASSES == 10
#define OOD_CIFAR_C_NAME "cifar10-c"
#define OOD_CIFAR_C_FOLDER "CIFAR-10-C"
#define OOD_CIFAR_C_ZENODO "https://zenodo.org/record/2535967/files/CIFAR-10-C.tar"
#define OOD_CIFAR_C_MD5 "56bf5dcef84df0e2308c6dcbcbbd8499"
#elif OOD_CIFAR_C_CLASSES == 100
#define OOD_CIFAR_C_NAME "cifar100-c"
#define OOD_CIFAR_C_FOLDER "CIFAR-100-C"
#define OOD_CIFAR_C_ZENODO "https://zenodo.org/record/3555552/files/CIFAR-100-C.tar"
#define OOD_CIFAR_C_MD5 "11f0ed0f1191edbf9fa23466ae6021d3"
#else
#error "OOD_CIFAR_C_CLASSES must be 10 or 100"
#endif

namespace {

namespace fs = std::filesystem;

const std::string kName = OOD_CIFAR_C_NAME;
const std::string kFolder = OOD_CIFAR_C_FOLDER;

// pytorch-ood's order, which "all" concatenates in.
const std::vector<std::string> kCorruptions = {
    "brightness",     "contrast",    "defocus_blur",  "elastic_transform", "fog",          "frost",
    "gaussian_blur",  "gaussian_noise", "glass_blur", "impulse_noise",     "jpeg_compression", "motion_blur",
    "pixelate",       "saturate",    "shot_noise",    "snow",              "spatter",      "speckle_noise",
    "zoom_blur"};

ood::download::DataSource source(const std::string& subset) {
  ood::download::Resource archive;
  archive.file_name = kFolder + ".tar";
  archive.urls = {OOD_CIFAR_C_ZENODO};
  archive.md5 = OOD_CIFAR_C_MD5;
  ood::download::DataSource s{kName, {archive}, {kFolder + "/labels.npy"}};
  for (const auto& c : kCorruptions)
    if (subset == "all" || subset == c) s.expected.push_back(kFolder + "/" + c + ".npy");
  return s;
}

std::shared_ptr<ood::Dataset> make_cifar_c(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string subset = p.get_string("subset");
  ood::download::prepare(root, source(subset), p.get_bool("download"));
  const fs::path folder = root / kFolder;
  at::Tensor labels = ood::io::read_npy(folder / "labels.npy");
  if (labels.dim() != 1 || !at::isIntegralType(labels.scalar_type(), /*includeBool=*/false))
    throw ood::FileError(kName + ": " + (folder / "labels.npy").string() + ": expected an integer array [N]");
  labels = labels.to(at::kLong);
  const std::int64_t n = labels.size(0);
  const std::int64_t severity = p.has("severity") ? p.get_int("severity") : 0;
  if (severity > 0 && n % 5 != 0)
    throw ood::FileError(kName + ": " + (folder / "labels.npy").string() + ": " + std::to_string(n) +
                         " labels cannot be split into 5 severities");
  std::vector<at::Tensor> images, targets;
  for (const auto& c : kCorruptions) {
    if (subset != "all" && subset != c) continue;
    const fs::path file = folder / (c + ".npy");
    at::Tensor x = ood::io::read_npy(file);
    if (x.scalar_type() != at::kByte || x.dim() != 4 || x.size(1) != 32 || x.size(2) != 32 || x.size(3) != 3)
      throw ood::FileError(kName + ": " + file.string() + ": expected uint8 images [N, 32, 32, 3]");
    if (x.size(0) != n)
      throw ood::FileError(kName + ": " + file.string() + ": " + std::to_string(x.size(0)) + " images for " +
                           std::to_string(n) + " labels in labels.npy");
    at::Tensor y = labels;
    if (severity > 0) {
      const std::int64_t block = n / 5;
      x = x.slice(0, (severity - 1) * block, severity * block);
      y = y.slice(0, (severity - 1) * block, severity * block);
    }
    images.push_back(x);
    targets.push_back(y);
  }
  at::Tensor all_labels = at::cat(targets);
  if (all_labels.numel() > 0 &&
      (all_labels.min().item<std::int64_t>() < 0 || all_labels.max().item<std::int64_t>() >= OOD_CIFAR_C_CLASSES))
    throw ood::FileError(kName + ": " + (folder / "labels.npy").string() + ": labels must be 0.." +
                         std::to_string(OOD_CIFAR_C_CLASSES - 1));
  ood::data::ArrayDatasetOptions options;
  options.dataset = kName;
  options.layout = ood::data::ArrayLayout::NHWC;
  return ood::data::array_dataset(images.size() == 1 ? images[0] : at::cat(images), all_labels, options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kName;
  info.summary = std::string(OOD_CIFAR_C_CLASSES == 10 ? "CIFAR-10" : "CIFAR-100") +
                 " test images under 19 corruptions at 5 severities";
  info.paper =
      "Hendrycks & Dietterich, Benchmarking Neural Network Robustness to Common Corruptions and Perturbations, "
      "ICLR 2019";
  info.year = 2019;
  info.doc = "Samples: float32 [3, 32, 32] in [0, 1] and the stored class label (not -1).\n"
             "Layout: root/" + kFolder + "/<corruption>.npy and labels.npy (pytorch-ood's), from " + kFolder +
             ".tar (zenodo.org, CC BY 4.0). Each file holds five blocks of the test set, severity 1 to 5; "
             "\"all\" concatenates the 19 corruptions (held in memory, as pytorch-ood).";
  std::vector<std::string> subsets = kCorruptions;
  subsets.push_back("all");
  info.params = {
      ood::data::root_param("folder holding " + kFolder + "/ (or where to download it)"),
      ood::ParamSpec::choice("subset", subsets, "the corruption, or all of them").default_value("all"),
      ood::ParamSpec::integer("severity", "only this severity (1..5); default: all five").min(1).max(5).optional(),
      ood::data::download_param(),
  };
  registrar.add_dataset(info, make_cifar_c);
}

}  // namespace

OOD_PLUGIN(OOD_CIFAR_C_NAME, "CIFAR-C corruption dataset", register_components)
