// Per-channel normalisation, as torchvision's Normalize: x_c = (x_c - mean_c) / std_c.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

class Normalize final : public ood::Augmentation {
 public:
  Normalize(const std::vector<double>& mean, const std::vector<double>& std)
      : mean_(at::tensor(mean, at::kFloat).view({-1, 1, 1})), std_(at::tensor(std, at::kFloat).view({-1, 1, 1})) {}

  ood::Sample apply(ood::Sample s, at::Generator&) const override {
    if (s.input.dim() != 3 || (mean_.size(0) != 1 && s.input.size(0) != mean_.size(0)))
      throw ood::ShapeError("normalize: expected an image [C, H, W] with C = " + std::to_string(mean_.size(0)) +
                            " (the length of mean and std), got " + ood::describe_tensor(s.input));
    s.input = (s.input - mean_.to(s.input.scalar_type())) / std_.to(s.input.scalar_type());
    return s;
  }

 private:
  at::Tensor mean_, std_;
};

void check_params(const ood::Params& p) {
  if (p.get_float_list("mean").size() != p.get_float_list("std").size())
    throw ood::InvalidArgument(p.pointer("std") + ": mean and std must have the same length");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "normalize";
  info.summary = "per-channel normalisation (x - mean) / std";
  info.doc = "As torchvision.transforms.Normalize. One value per channel, or one for all channels.";
  info.params = {
      ood::ParamSpec::list("mean", ood::ParamType::Float, "per-channel mean").items(1),
      ood::ParamSpec::list("std", ood::ParamType::Float, "per-channel standard deviation").items(1).min(0.0, true),
  };
  info.check = check_params;
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    check_params(p);
    return std::make_shared<Normalize>(p.get_float_list("mean"), p.get_float_list("std"));
  });
}

}  // namespace

OOD_PLUGIN("normalize", "Normalisation transform", register_components)
