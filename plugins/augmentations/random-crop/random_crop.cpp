// Random crop after optional zero padding, as torchvision's RandomCrop(size, padding).
// The offsets come from the sample's own generator (seeded by the loader).
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

class RandomCrop final : public ood::Augmentation {
 public:
  RandomCrop(std::int64_t height, std::int64_t width, std::int64_t padding)
      : height_(height), width_(width), padding_(padding) {}

  ood::Sample apply(ood::Sample s, at::Generator& gen) const override {
    if (s.input.dim() != 3)
      throw ood::ShapeError("random-crop: expected an image [C, H, W], got " + ood::describe_tensor(s.input));
    at::Tensor x = padding_ > 0 ? at::constant_pad_nd(s.input, {padding_, padding_, padding_, padding_}, 0)
                                : s.input;
    if (x.size(1) < height_ || x.size(2) < width_)
      throw ood::ShapeError("random-crop: crop " + std::to_string(height_) + "x" + std::to_string(width_) +
                            " is larger than the (padded) image " + ood::describe_tensor(x));
    const std::int64_t top = ood::uniform_int(gen, 0, x.size(1) - height_ + 1);
    const std::int64_t left = ood::uniform_int(gen, 0, x.size(2) - width_ + 1);
    s.input = x.slice(1, top, top + height_).slice(2, left, left + width_).contiguous();
    return s;
  }

 private:
  std::int64_t height_, width_, padding_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "random-crop";
  info.summary = "random crop of [H, W] after zero padding";
  info.doc = "As torchvision.transforms.RandomCrop(size, padding) with fill 0.";
  info.params = {
      ood::ParamSpec::list("size", ood::ParamType::Int, "crop size [H, W] or [S]").items(1, 2).min(1),
      ood::ParamSpec::integer("padding", "zero padding on every border").default_value(0).min(0),
  };
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    const auto size = p.get_int_list("size");
    return std::make_shared<RandomCrop>(size[0], size.size() > 1 ? size[1] : size[0], p.get_int("padding"));
  });
}

}  // namespace

OOD_PLUGIN("random-crop", "Random crop augmentation", register_components)
