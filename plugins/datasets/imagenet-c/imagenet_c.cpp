// ImageNet-C (Hendrycks & Dietterich, ICLR 2019): the 50000 ImageNet validation images
// under 19 algorithmic corruptions (15 benchmark ones plus 4 extra) at 5 severities,
// published as five tars, one per group of corruptions.
//
// pytorch-ood's ImageNetC cannot read the published tars (it lists a folder the tars do
// not create and opens bare file names), so this defines the layout instead: the tar of
// the chosen subset is extracted into root/ImageNet-C/ and the samples are
// root/ImageNet-C/<corruption>/<severity>/<wnid>/<file> for the subset's corruptions
// (the upstream tars hold <corruption>/<severity>/<wnid>/*.JPEG), every label -1 as in
// pytorch-ood. The tar's md5 (declared but never checked by pytorch-ood) is checked.
#include <algorithm>
#include <array>

#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* kDataset = "imagenet-c";
constexpr const char* kFolder = "ImageNet-C";

struct Subset {
  const char* name;
  const char* md5;
  std::vector<std::string> corruptions;  // the folders of its tar, sorted
};

// The grouping of the Hendrycks release (one tar per group) and the md5s pytorch-ood declares.
const std::array<Subset, 5>& subsets() {
  static const std::array<Subset, 5> all{{
      {"blur", "2d8e81fdd8e07fef67b9334fa635e45c", {"defocus_blur", "glass_blur", "motion_blur", "zoom_blur"}},
      {"digital", "89157860d7b10d5797849337ca2e5c03", {"contrast", "elastic_transform", "jpeg_compression", "pixelate"}},
      {"extra", "d492dfba5fc162d8ec2c3cd8ee672984", {"gaussian_blur", "saturate", "spatter", "speckle_noise"}},
      {"noise", "e80562d7f6c3f8834afb1ecf27252745", {"gaussian_noise", "impulse_noise", "shot_noise"}},
      {"weather", "33ffea4db4d93fe4a428c40a6ce0c25d", {"brightness", "fog", "frost", "snow"}},
  }};
  return all;
}

const Subset& subset_named(const std::string& name) {
  for (const auto& s : subsets())
    if (name == s.name) return s;
  throw ood::InvalidArgument(std::string(kDataset) + ": unknown subset '" + name + "'");  // the schema prevents it
}

std::vector<std::string> all_corruptions() {
  std::vector<std::string> names;
  for (const auto& s : subsets()) names.insert(names.end(), s.corruptions.begin(), s.corruptions.end());
  std::sort(names.begin(), names.end());
  return names;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// The corruption must belong to the chosen subset's tar: checked by `ood validate` too.
void check_params(const ood::Params& p) {
  if (!p.has("corruption")) return;
  const Subset& subset = subset_named(p.get_string("subset"));
  const std::string corruption = p.get_string("corruption");
  if (std::find(subset.corruptions.begin(), subset.corruptions.end(), corruption) == subset.corruptions.end())
    throw ood::InvalidArgument(p.pointer("corruption") + ": corruption '" + corruption + "' is not in subset '" +
                               subset.name + "' (its corruptions: " + joined(subset.corruptions) + ")");
}

ood::download::DataSource source(const Subset& subset, const std::vector<std::string>& corruptions) {
  ood::download::Resource archive;
  archive.file_name = std::string(subset.name) + ".tar";
  archive.urls = {"https://zenodo.org/record/2235448/files/" + archive.file_name};
  archive.md5 = subset.md5;
  archive.extract_to = kFolder;
  std::vector<std::string> expected;
  for (const auto& c : corruptions) expected.push_back(std::string(kFolder) + "/" + c);
  return {kDataset, {archive}, expected};
}

std::shared_ptr<ood::Dataset> make_imagenet_c(const ood::Params& p, ood::Context& context) {
  check_params(p);
  const Subset& subset = subset_named(p.get_string("subset"));
  const std::vector<std::string> corruptions =
      p.has("corruption") ? std::vector<std::string>{p.get_string("corruption")} : subset.corruptions;
  std::vector<std::int64_t> severities{1, 2, 3, 4, 5};
  if (p.has("severity")) severities = {p.get_int("severity")};

  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(subset, corruptions), p.get_bool("download"));
  // The files ImageFolder would take, as users of ImageNet-C read it
  // (ImageFolder(root/ImageNet-C/<corruption>/<severity>)).
  ood::data::ListOptions options;
  options.extensions = ood::data::image_extensions();
  std::vector<fs::path> files;
  for (const auto& corruption : corruptions)
    for (const std::int64_t severity : severities) {
      const fs::path folder = root / kFolder / corruption / std::to_string(severity);
      try {
        for (auto& f : ood::data::folder_classes(folder, options).files) files.push_back(std::move(f));
      } catch (const ood::FileError& e) {
        throw ood::FileError(std::string(kDataset) + ": " + e.what() + " (expected " + folder.string() +
                             "/<wnid>/*.JPEG for every corruption of the subset and severities 1 to 5)");
      }
    }
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions image_options;
  image_options.dataset = kDataset;
  image_options.folder = root / kFolder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), image_options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "ImageNet-C: corrupted ImageNet validation images, one subset of corruptions, OOD (label -1)";
  info.paper =
      "Hendrycks, Dietterich, Benchmarking Neural Network Robustness to Common Corruptions and Perturbations, "
      "ICLR 2019";
  info.year = 2019;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (224 x 224 JPEGs in the release; no RGB conversion), "
      "label -1 (as pytorch-ood).\n"
      "Subsets (one tar each): blur = defocus_blur glass_blur motion_blur zoom_blur; digital = contrast "
      "elastic_transform jpeg_compression pixelate; extra = gaussian_blur saturate spatter speckle_noise; "
      "noise = gaussian_noise impulse_noise shot_noise; weather = brightness fog frost snow. `corruption` "
      "restricts to one of the subset's corruptions, `severity` to one severity; order: corruption (as "
      "listed), severity, wnid, file.\n"
      "Layout (defined here; pytorch-ood's ImageNetC does not match the release): <subset>.tar is "
      "extracted into root/ImageNet-C/, samples are root/ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG "
      "(torchvision's image extensions, case-insensitive).\n"
      "Source: zenodo.org/record/2235448/files/<subset>.tar (md5 checked; 7 to 21 GB each), the "
      "authors' release of github.com/hendrycks/robustness (CC BY 4.0 according to the Zenodo record); "
      "made from ImageNet validation images, whose terms of access also apply (research use).";
  std::vector<std::string> subset_names;
  for (const auto& s : subsets()) subset_names.push_back(s.name);
  info.params = {
      ood::data::root_param("folder holding ImageNet-C/ (or where to download the subset's tar)"),
      ood::ParamSpec::choice("subset", subset_names, "which group of corruptions (one tar each)"),
      ood::ParamSpec::choice("corruption", all_corruptions(), "only this corruption of the subset (default: all)")
          .optional(),
      ood::ParamSpec::integer("severity", "only this severity (default: all five)").optional().min(1).max(5),
      ood::ParamSpec::boolean("download", "download and extract the subset's tar when the data is missing")
          .default_value(false),
  };
  info.check = check_params;
  registrar.add_dataset(info, make_imagenet_c);
}

}  // namespace

OOD_PLUGIN("imagenet-c", "ImageNet-C dataset", register_components)
