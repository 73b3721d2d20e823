// A random crop of random area and aspect ratio, resized to a fixed size, as torchvision
// 0.14's RandomResizedCrop(size, scale, ratio) with bilinear interpolation. The box is
// drawn in crop_box.cpp; antialiasing (default on) filters when the crop is downscaled,
// as torchvision does for PIL images (tensors: antialias=True).
#include <ATen/ATen.h>

#include "crop_box.hpp"
#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

using ood_random_resized_crop::CropBox;
using ood_random_resized_crop::sample_crop_box;

struct Settings {
  std::int64_t height = 0, width = 0;
  std::pair<double, double> scale, ratio;
  bool antialias = true;
};

class RandomResizedCrop final : public ood::Augmentation {
 public:
  explicit RandomResizedCrop(Settings settings) : settings_(settings) {}

  ood::Sample apply(ood::Sample s, at::Generator& gen) const override {
    if (!s.input.defined() || s.input.dim() != 3 || !at::isFloatingType(s.input.scalar_type()) ||
        s.input.size(1) == 0 || s.input.size(2) == 0)
      throw ood::ShapeError("random-resized-crop: input must be a floating image [C, H, W], got " +
                            ood::describe_tensor(s.input));
    const CropBox box = sample_crop_box(s.input.size(1), s.input.size(2), settings_.scale, settings_.ratio, gen);
    const at::Tensor crop =
        s.input.slice(1, box.top, box.top + box.height).slice(2, box.left, box.left + box.width);
    // torchvision's resize returns a crop that already has the size unchanged.
    if (box.height == settings_.height && box.width == settings_.width) {
      s.input = crop.contiguous();
      return s;
    }
    const std::vector<std::int64_t> size = {settings_.height, settings_.width};
    const at::Tensor batch = crop.unsqueeze(0);
    s.input = (settings_.antialias ? at::_upsample_bilinear2d_aa(batch, size, false)
                                   : at::upsample_bilinear2d(batch, size, false))
                  .squeeze(0);
    return s;
  }

 private:
  Settings settings_;
};

std::pair<double, double> ordered_pair(const ood::Params& p, const std::string& name) {
  const auto values = p.get_float_list(name);
  if (values[0] > values[1])
    throw ood::InvalidArgument(p.pointer(name) + ": expected [min, max], got min > max");
  return {values[0], values[1]};
}

void check_params(const ood::Params& p) {
  ordered_pair(p, "scale");
  ordered_pair(p, "ratio");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "random-resized-crop";
  info.summary = "crop of random area and aspect ratio, resized to [H, W] (torchvision's RandomResizedCrop)";
  info.doc =
      "As torchvision 0.14's RandomResizedCrop(size, scale, ratio) with bilinear interpolation:\n"
      "up to 10 attempts draw an area fraction uniform in `scale` and an aspect ratio (w / h)\n"
      "log-uniform in `ratio`; the first box that fits the image is placed uniformly, else the\n"
      "centred box of the largest size with its aspect ratio clamped into `ratio`. The crop is\n"
      "resized to `size` (align_corners false), with antialiasing by default (torchvision does\n"
      "so for PIL images; on tensors it needs antialias=True). The draws are torchvision's, from\n"
      "the loader's generator: seeded like torch.manual_seed(s) it gives torchvision's crop.\n"
      "Unlike torchvision, a scale or ratio with min > max is an error (torchvision warns).";
  info.params = {
      ood::ParamSpec::list("size", ood::ParamType::Int, "output size [H, W] or [S]").items(1, 2).min(1),
      ood::ParamSpec::list("scale", ood::ParamType::Float, "range [min, max] of the crop's area fraction")
          .default_value(std::vector<double>{0.08, 1.0})
          .items(2, 2)
          .min(0.0, true),
      ood::ParamSpec::list("ratio", ood::ParamType::Float, "range [min, max] of the crop's aspect ratio w / h")
          .default_value(std::vector<double>{3.0 / 4.0, 4.0 / 3.0})
          .items(2, 2)
          .min(0.0, true),
      ood::ParamSpec::boolean("antialias", "filter when downscaling (like PIL)").default_value(true),
  };
  info.check = check_params;
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    check_params(p);
    const auto size = p.get_int_list("size");
    Settings settings;
    settings.height = size[0];
    settings.width = size.size() > 1 ? size[1] : size[0];
    settings.scale = ordered_pair(p, "scale");
    settings.ratio = ordered_pair(p, "ratio");
    settings.antialias = p.get_bool("antialias");
    return std::make_shared<RandomResizedCrop>(settings);
  });
}

}  // namespace

OOD_PLUGIN("random-resized-crop", "RandomResizedCrop augmentation", register_components)
