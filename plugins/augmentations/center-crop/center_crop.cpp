// Centre crop, as torchvision's CenterCrop(size): an image smaller than the crop is first
// zero-padded (the extra pixel of an odd difference on the right/bottom), and the crop's
// offset is round((H - h) / 2) with Python's round (halves to even), so odd differences
// land where torchvision puts them. Evaluation presets of ImageNet weights need it.
#include <ATen/ATen.h>

#include <cmath>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

// Python 3's round(): ties to even (std::nearbyint in the default rounding mode).
std::int64_t python_round_half(std::int64_t difference) {
  return static_cast<std::int64_t>(std::nearbyint(static_cast<double>(difference) / 2.0));
}

class CenterCrop final : public ood::Augmentation {
 public:
  CenterCrop(std::int64_t height, std::int64_t width) : height_(height), width_(width) {}

  ood::Sample apply(ood::Sample s, at::Generator&) const override {
    if (s.input.dim() != 3)
      throw ood::ShapeError("center-crop: expected an image [C, H, W], got " + ood::describe_tensor(s.input));
    at::Tensor x = s.input;
    if (x.size(1) < height_ || x.size(2) < width_) {
      const std::int64_t pad_h = std::max<std::int64_t>(height_ - x.size(1), 0);
      const std::int64_t pad_w = std::max<std::int64_t>(width_ - x.size(2), 0);
      // torchvision: [left, top, right, bottom] = [pw // 2, ph // 2, (pw + 1) // 2, (ph + 1) // 2]
      x = at::constant_pad_nd(x, {pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2}, 0);
      if (x.size(1) == height_ && x.size(2) == width_) {
        s.input = x.contiguous();
        return s;
      }
    }
    const std::int64_t top = python_round_half(x.size(1) - height_);
    const std::int64_t left = python_round_half(x.size(2) - width_);
    s.input = x.slice(1, top, top + height_).slice(2, left, left + width_).contiguous();
    return s;
  }

 private:
  std::int64_t height_, width_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "center-crop";
  info.summary = "centre crop to [H, W] (zero padding when the image is smaller)";
  info.doc =
      "As torchvision.transforms.CenterCrop(size): top = round((H - h) / 2), left = round((W - w) / 2)\n"
      "with Python's rounding (halves to even); an image smaller than the crop is zero-padded first,\n"
      "the odd pixel on the right/bottom. size: [H, W], or [S] for a square.";
  info.params = {
      ood::ParamSpec::list("size", ood::ParamType::Int, "crop size [H, W] or [S]").items(1, 2).min(1),
  };
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    const auto size = p.get_int_list("size");
    return std::make_shared<CenterCrop>(size[0], size.size() > 1 ? size[1] : size[0]);
  });
}

}  // namespace

OOD_PLUGIN("center-crop", "Centre crop transform", register_components)
