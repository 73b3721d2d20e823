// Mirrors an image left-right with probability p, as torchvision's
// RandomHorizontalFlip. The coin comes from the sample's own generator.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

class RandomHorizontalFlip final : public ood::Augmentation {
 public:
  explicit RandomHorizontalFlip(double p) : p_(p) {}
  ood::Sample apply(ood::Sample s, at::Generator& gen) const override {
    if (s.input.dim() < 2)
      throw ood::ShapeError("random-horizontal-flip: expected an image [..., H, W], got " +
                            ood::describe_tensor(s.input));
    if (ood::uniform01(gen) < p_) s.input = s.input.flip({-1});
    return s;
  }

 private:
  double p_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "random-horizontal-flip";
  info.summary = "left-right mirror with probability p";
  info.doc = "As torchvision.transforms.RandomHorizontalFlip.";
  info.params = {ood::ParamSpec::real("p", "flip probability").default_value(0.5).min(0.0).max(1.0)};
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<RandomHorizontalFlip>(p.get_float("p"));
  });
}

}  // namespace

OOD_PLUGIN("random-horizontal-flip", "Random horizontal flip augmentation", register_components)
