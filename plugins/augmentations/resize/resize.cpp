// Bilinear resize of an image [C, H, W], either to a fixed size or, as torchvision's
// Resize(int), with the shorter side to a given length and the aspect ratio kept. With
// antialias (the default) downscaling filters like PIL's bilinear resize, which
// torchvision uses on PIL images.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

struct Target {
  std::int64_t height = 0, width = 0;  // fixed size, or
  std::int64_t shorter_side = 0;       // > 0: the shorter side to this, the longer in proportion
};

class Resize final : public ood::Augmentation {
 public:
  Resize(Target target, bool antialias) : target_(target), antialias_(antialias) {}

  ood::Sample apply(ood::Sample s, at::Generator&) const override {
    if (s.input.dim() != 3 || !at::isFloatingType(s.input.scalar_type()))
      throw ood::ShapeError("resize: expected a floating image [C, H, W], got " + ood::describe_tensor(s.input));
    const auto [height, width] = output_size(s.input.size(1), s.input.size(2));
    if (s.input.size(1) == height && s.input.size(2) == width) return s;
    const at::Tensor batch = s.input.unsqueeze(0);
    const std::vector<std::int64_t> size = {height, width};
    s.input = (antialias_ ? at::_upsample_bilinear2d_aa(batch, size, false)
                          : at::upsample_bilinear2d(batch, size, false))
                  .squeeze(0);
    return s;
  }

 private:
  std::pair<std::int64_t, std::int64_t> output_size(std::int64_t h, std::int64_t w) const {
    if (target_.shorter_side == 0) return {target_.height, target_.width};
    // torchvision 0.14 _compute_resized_output_size: the longer side is truncated,
    // int(size * long / short), computed in double as Python does.
    const std::int64_t s = target_.shorter_side;
    const auto longer = [s](std::int64_t lo, std::int64_t sh) {
      return std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(s) * static_cast<double>(lo) /
                                                                 static_cast<double>(sh)));
    };
    if (w <= h) return {longer(h, w), s};
    return {s, longer(w, h)};
  }

  Target target_;
  bool antialias_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "resize";
  info.summary = "bilinear resize to [H, W], or of the shorter side to S";
  info.doc =
      "size: [H, W], or [S] for a square (pytorch-ood's Resize((S, S))); or shorter_side: S, as\n"
      "torchvision's Resize(S): the shorter side becomes S, the longer int(S * long / short).\n"
      "Give exactly one of the two. align_corners=false, as torchvision.";
  info.params = {
      ood::ParamSpec::list("size", ood::ParamType::Int, "target size [H, W] or [S]").items(1, 2).min(1).optional(),
      ood::ParamSpec::integer("shorter_side", "the shorter side's new length, aspect ratio kept")
          .optional()
          .min(1),
      ood::ParamSpec::boolean("antialias", "filter when downscaling (like PIL)").default_value(true),
  };
  info.check = [](const ood::Params& p) {
    if (p.has("size") == p.has("shorter_side"))
      throw ood::InvalidArgument(p.pointer("size") + ": give exactly one of 'size' and 'shorter_side'");
  };
  registrar.add_augmentation(info, [check = info.check](const ood::Params& p, ood::Context&) {
    check(p);
    Target t;
    if (p.has("size")) {
      const auto size = p.get_int_list("size");
      t.height = size[0];
      t.width = size.size() > 1 ? size[1] : size[0];
    } else {
      t.shorter_side = p.get_int("shorter_side");
    }
    return std::make_shared<Resize>(t, p.get_bool("antialias"));
  });
}

}  // namespace

OOD_PLUGIN("resize", "Resize transform", register_components)
