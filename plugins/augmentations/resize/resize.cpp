// Bilinear resize of an image [C, H, W] to a fixed size. With antialias (the default)
// downscaling filters like PIL's bilinear resize, which torchvision uses on PIL images.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

class Resize final : public ood::Augmentation {
 public:
  Resize(std::int64_t height, std::int64_t width, bool antialias)
      : height_(height), width_(width), antialias_(antialias) {}

  ood::Sample apply(ood::Sample s, at::Generator&) const override {
    if (s.input.dim() != 3 || !at::isFloatingType(s.input.scalar_type()))
      throw ood::ShapeError("resize: expected a floating image [C, H, W], got " + ood::describe_tensor(s.input));
    if (s.input.size(1) == height_ && s.input.size(2) == width_) return s;
    const at::Tensor batch = s.input.unsqueeze(0);
    const std::vector<std::int64_t> size = {height_, width_};
    s.input = (antialias_ ? at::_upsample_bilinear2d_aa(batch, size, false)
                          : at::upsample_bilinear2d(batch, size, false))
                  .squeeze(0);
    return s;
  }

 private:
  std::int64_t height_, width_;
  bool antialias_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "resize";
  info.summary = "bilinear resize to [H, W]";
  info.doc = "size: [H, W], or [S] for a square. align_corners=false, as torchvision.";
  info.params = {
      ood::ParamSpec::list("size", ood::ParamType::Int, "target size [H, W] or [S]").items(1, 2).min(1),
      ood::ParamSpec::boolean("antialias", "filter when downscaling (like PIL)").default_value(true),
  };
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    const auto size = p.get_int_list("size");
    return std::make_shared<Resize>(size[0], size.size() > 1 ? size[1] : size[0], p.get_bool("antialias"));
  });
}

}  // namespace

OOD_PLUGIN("resize", "Resize transform", register_components)
