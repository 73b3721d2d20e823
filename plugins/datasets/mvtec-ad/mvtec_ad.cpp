// MVTec AD (Bergmann et al., CVPR 2019): 5354 high-resolution images of 15 industrial
// object and texture categories; train holds defect-free images only, test holds good
// and defective ones with pixel-precise defect masks, for anomaly detection and
// segmentation.
//
// As pytorch-ood's MVTechAD (folder name "mvtech-ad" kept, typo included, so that its
// roots work here): mvtec_anomaly_detection.tar.xz is downloaded to root/mvtech-ad/ and
// extracted there; samples are root/mvtech-ad/<category>/<split>/<defect>/*.png, masks
// root/mvtech-ad/<category>/ground_truth/<defect>/<stem>_mask.png. Deviations, on
// purpose:
//   - masks are paired with images by name, not by sorted position (a missing or stray
//     mask would silently shift every pairing), and a defective image without its mask
//     is an error naming it;
//   - the target marks defective (OOD) pixels -1 and normal ones 0, as int64 for every
//     image; pytorch-ood's "-1 * uint8 mask" wraps 255 to 1 and gives float zeros of shape
//     (W, H) for good images;
//   - defect folders are sorted (pytorch-ood's order depends on the filesystem);
//   - no checksum: the one pytorch-ood declares belongs to another file (MNIST-C's zip).
#include <ATen/ATen.h>

#include <algorithm>

#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/dataset.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* kDataset = "mvtec-ad";
constexpr const char* kFolder = "mvtech-ad";  // pytorch-ood's name

// pytorch-ood's order, used when no subset is chosen.
const std::vector<std::string>& categories() {
  static const std::vector<std::string> names{"bottle", "cable", "capsule", "carpet", "grid",
                                              "hazelnut", "leather", "metal_nut", "pill", "screw",
                                              "tile", "toothbrush", "transistor", "wood", "zipper"};
  return names;
}

ood::download::Resource archive() {
  ood::download::Resource r;
  r.file_name = "mvtec_anomaly_detection.tar.xz";
  r.urls = {"https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/"
            "mvtec_anomaly_detection.tar.xz"};
  r.folder = kFolder;
  r.manual =
      "if that time-stamped link has expired, download the archive from "
      "https://www.mvtec.com/company/research/datasets/mvtec-ad (or name a working URL in $OOD_RESOURCES)";
  return r;
}

struct ImageAndMask {
  fs::path image;
  fs::path mask;  // empty for a good image
};

class MvtecAd final : public ood::Dataset {
 public:
  explicit MvtecAd(std::vector<ImageAndMask> samples) : samples_(std::move(samples)) {}

  std::int64_t size() const override { return static_cast<std::int64_t>(samples_.size()); }

  ood::Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw ood::InvalidArgument(std::string(kDataset) + ": index " + std::to_string(index) + " out of range [0, " +
                                 std::to_string(size()) + ")");
    const ImageAndMask& s = samples_[static_cast<std::size_t>(index)];
    try {
      const at::Tensor image = ood::io::read_image(s.image, ood::io::ImageMode::Keep);
      const std::int64_t height = image.size(0), width = image.size(1);
      if (s.mask.empty()) return {ood::io::image_to_tensor(image), at::zeros({height, width}, at::kLong)};
      const at::Tensor mask = ood::io::read_image(s.mask, ood::io::ImageMode::Grey).squeeze(2);
      if (mask.size(0) != height || mask.size(1) != width)
        throw ood::FileError(s.mask.string() + ": mask is " + std::to_string(mask.size(0)) + " x " +
                             std::to_string(mask.size(1)) + " (height x width), its image " + s.image.string() +
                             " is " + std::to_string(height) + " x " + std::to_string(width));
      // Any non-zero mask value marks a defective pixel (the masks are 0/255).
      return {ood::io::image_to_tensor(image), -(mask > 0).to(at::kLong)};
    } catch (const ood::FileError& e) {
      throw ood::FileError(std::string(kDataset) + ": " + e.what());
    }
  }

  ood::DatasetInfo info() const override {
    ood::DatasetInfo info;
    info.classes = {"good"};  // image label 0; defective images are -1
    info.task = ood::Task::Segmentation;
    info.modality = ood::Modality::Image;
    return info;
  }

  // Image labels without decoding: 0 for good, -1 for defective images.
  at::Tensor labels() const override {
    at::Tensor out = at::empty({size()}, at::kLong);
    auto* data = out.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < samples_.size(); ++i) data[i] = samples_[i].mask.empty() ? 0 : -1;
    return out;
  }

 private:
  std::vector<ImageAndMask> samples_;
};

// The images of one category and split, each with its mask (found by name).
void collect(const fs::path& category, const std::string& split, std::vector<ImageAndMask>& out) {
  ood::data::ListOptions png;  // pytorch-ood's glob("*.png")
  png.extensions = {".png"};
  png.case_sensitive = true;
  for (const auto& defect : ood::data::list_subfolders(category / split)) {
    for (auto& image : ood::data::list_files(category / split / defect, png)) {
      if (defect == "good") {
        out.push_back({std::move(image), {}});
        continue;
      }
      fs::path mask = category / "ground_truth" / defect / (image.stem().string() + "_mask.png");
      std::error_code ec;
      if (!fs::is_regular_file(mask, ec))
        throw ood::FileError(image.string() + ": defective image without mask (expected " + mask.string() + ")");
      out.push_back({std::move(image), std::move(mask)});
    }
  }
}

std::shared_ptr<ood::Dataset> make_mvtec_ad(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string split = p.get_string("split");
  const fs::path base = root / kFolder;
  std::error_code ec;
  std::vector<std::string> chosen;
  if (p.has("subset")) {
    chosen = {p.get_string("subset")};
    ood::download::prepare(root, {kDataset, {archive()}, {std::string(kFolder) + "/" + chosen[0] + "/" + split}},
                           p.get_bool("download"));
  } else {
    // Every category present, as pytorch-ood; the archive only when none is.
    const bool any = std::any_of(categories().begin(), categories().end(),
                                 [&](const std::string& c) { return fs::is_directory(base / c, ec); });
    if (!any) {
      std::vector<std::string> expected;
      for (const auto& c : categories()) expected.push_back(std::string(kFolder) + "/" + c);
      ood::download::prepare(root, {kDataset, {archive()}, expected}, p.get_bool("download"));
    }
    for (const auto& c : categories())
      if (fs::is_directory(base / c, ec)) chosen.push_back(c);
  }
  std::vector<ImageAndMask> samples;
  try {
    for (const auto& category : chosen) collect(base / category, split, samples);
  } catch (const ood::FileError& e) {
    throw ood::FileError(std::string(kDataset) + ": " + e.what());
  }
  if (samples.empty())
    throw ood::FileError(std::string(kDataset) + ": no *.png images in " + base.string() + "/<category>/" + split +
                         "/<defect>/");
  return std::make_shared<MvtecAd>(std::move(samples));
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "MVTec AD: industrial images with defect masks; target = mask (-1 defective pixel, 0 normal)";
  info.paper =
      "Bergmann, Fauser, Sattlegger, Steger, MVTec AD - A Comprehensive Real-World Dataset for Unsupervised "
      "Anomaly Detection, CVPR 2019";
  info.year = 2019;
  info.doc =
      "Samples: input float32 [C, H, W] in [0, 1] as stored (RGB, or 1 channel for grid, screw and zipper; "
      "700 to 1024 pixels square: use resize, and to-rgb when mixing categories); target int64 [H, W], -1 for "
      "a defective (OOD) pixel (mask value > 0) and 0 for a normal one, all 0 for good images. Task: "
      "segmentation (the target is a pixel map; the image label is in labels(): 0 for good, -1 for "
      "defective images).\n"
      "Deviations from pytorch-ood's MVTechAD: defective pixels are -1 (pytorch-ood's uint8 arithmetic "
      "turns 255 into 1), targets are int64 [H, W] for every image (pytorch-ood: float (W, H) zeros for "
      "good ones), masks are paired by name (<stem>_mask.png) instead of sorted position, defect folders "
      "are sorted.\n"
      "Layout: root/mvtech-ad/<category>/<split>/<defect>/*.png (pytorch-ood's folder name, typo "
      "included), masks root/mvtech-ad/<category>/ground_truth/<defect>/<stem>_mask.png; train has only "
      "good/. Without subset: every category present, in the order bottle cable capsule carpet grid "
      "hazelnut leather metal_nut pill screw tile toothbrush transistor wood zipper.\n"
      "Source: mvtec_anomaly_detection.tar.xz (about 4.9 GB) from mydrive.ch, the link pytorch-ood uses "
      "(time-stamped; www.mvtec.com/company/research/datasets/mvtec-ad otherwise); no checksum is "
      "published, none is checked. Licence: CC BY-NC-SA 4.0 (non-commercial).";
  info.params = {
      ood::data::root_param("folder holding mvtech-ad/ (or where to download it)"),
      ood::ParamSpec::choice("split", {"train", "test"}, "train (good images only) or test"),
      ood::ParamSpec::choice("subset", categories(), "only this category (default: every category present)")
          .optional(),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_mvtec_ad);
}

}  // namespace

OOD_PLUGIN("mvtec-ad", "MVTec AD dataset", register_components)
