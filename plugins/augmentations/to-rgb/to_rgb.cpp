// Grey to RGB: a one-channel image becomes three identical channels (what PIL's
// convert("RGB") does for mode L); three-channel images pass unchanged.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

class ToRgb final : public ood::Augmentation {
 public:
  ood::Sample apply(ood::Sample s, at::Generator&) const override {
    if (s.input.dim() != 3 || (s.input.size(0) != 1 && s.input.size(0) != 3))
      throw ood::ShapeError("to-rgb: expected an image [1, H, W] or [3, H, W], got " +
                            ood::describe_tensor(s.input));
    if (s.input.size(0) == 1) s.input = s.input.expand({3, -1, -1}).contiguous();
    return s;
  }
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "to-rgb";
  info.summary = "repeats a grey channel three times";
  info.doc = "As pytorch-ood's ToRGB on grey images. RGB images pass unchanged.";
  registrar.add_augmentation(info, [](const ood::Params&, ood::Context&) { return std::make_shared<ToRgb>(); });
}

}  // namespace

OOD_PLUGIN("to-rgb", "Grey to RGB transform", register_components)
