// Random brightness, contrast, saturation and hue, as torchvision 0.14's
// ColorJitter(brightness, contrast, saturation, hue) on float tensors. The functions are
// in color_jitter_ops.cpp; this file holds the parameters and the component.
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "color_jitter_ops.hpp"
#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

using namespace ood_color_jitter;

class ColorJitter final : public ood::Augmentation {
 public:
  explicit ColorJitter(JitterRanges ranges) : ranges_(std::move(ranges)) {}

  ood::Sample apply(ood::Sample s, at::Generator& gen) const override {
    if (!s.input.defined() || s.input.dim() != 3 || !at::isFloatingType(s.input.scalar_type()) ||
        (s.input.size(0) != 1 && s.input.size(0) != 3))
      throw ood::ShapeError("color-jitter: input must be a floating image [C, H, W] with 1 or 3 channels, got " +
                            ood::describe_tensor(s.input));
    s.input = apply_jitter(s.input, draw_jitter(ranges_, gen));
    return s;
  }

 private:
  JitterRanges ranges_;
};

/// The range of one adjustment from `name` (a spread f) or `name_range` ([min, max]), as
/// torchvision's ColorJitter._check_input: empty when it is the neutral [center, center].
Range range_of(const ood::Params& p, const std::string& name, double center, double low_bound, double high_bound,
               bool spread_clipped_at_zero) {
  const std::string range_name = name + "_range";
  const double spread = p.get_float(name);
  std::pair<double, double> range;
  if (p.has(range_name)) {
    if (spread != 0.0)
      throw ood::InvalidArgument(p.pointer(range_name) + ": give either '" + name + "' or '" + range_name +
                                 "', not both");
    const auto values = p.get_float_list(range_name);
    range = {values[0], values[1]};
    if (!(low_bound <= range.first && range.first <= range.second && range.second <= high_bound))
      throw ood::InvalidArgument(p.pointer(range_name) + ": expected [min, max] with " + std::to_string(low_bound) +
                                 " <= min <= max <= " + std::to_string(high_bound) + ", got [" +
                                 std::to_string(range.first) + ", " + std::to_string(range.second) + "]");
  } else {
    range = {center - spread, center + spread};
    if (spread_clipped_at_zero) range.first = std::max(range.first, 0.0);
  }
  if (range.first == center && range.second == center) return std::nullopt;
  return range;
}

JitterRanges ranges_of(const ood::Params& p) {
  const double infinity = std::numeric_limits<double>::infinity();
  JitterRanges r;
  r.brightness = range_of(p, "brightness", 1.0, 0.0, infinity, true);
  r.contrast = range_of(p, "contrast", 1.0, 0.0, infinity, true);
  r.saturation = range_of(p, "saturation", 1.0, 0.0, infinity, true);
  r.hue = range_of(p, "hue", 0.0, -0.5, 0.5, false);
  return r;
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "color-jitter";
  info.summary = "random brightness, contrast, saturation and hue (torchvision's ColorJitter)";
  info.doc =
      "As torchvision 0.14's ColorJitter on float tensors [C, H, W] in [0, 1], C = 1 or 3. Each\n"
      "adjustment takes a spread f (factor uniform in [max(0, 1 - f), 1 + f]; for hue in [-f, f])\n"
      "or an explicit <name>_range [min, max]; 0 (the default) turns it off. The four adjustments\n"
      "run in a random order: brightness blends with black, contrast with the mean of the\n"
      "grayscale image (0.2989 R + 0.587 G + 0.114 B), saturation with the grayscale image, hue\n"
      "shifts H in HSV; results are clamped to [0, 1]. Grey images: saturation and hue do nothing.\n"
      "The draws are torchvision's (randperm(4), then one float32 uniform per enabled\n"
      "adjustment) from the loader's generator: a generator seeded like torch.manual_seed(s)\n"
      "gives torchvision's output for that seed.";
  const auto spread = [](const std::string& name, const std::string& what) {
    return ood::ParamSpec::real(name, what + " spread f: factor uniform in [max(0, 1 - f), 1 + f]; 0 = off")
        .default_value(0.0)
        .min(0.0);
  };
  const auto range = [](const std::string& name, const std::string& what) {
    return ood::ParamSpec::list(name, ood::ParamType::Float, what + " factor range [min, max], 0 <= min <= max")
        .items(2, 2)
        .min(0.0)
        .optional();
  };
  info.params = {
      spread("brightness", "brightness"),
      range("brightness_range", "brightness"),
      spread("contrast", "contrast"),
      range("contrast_range", "contrast"),
      spread("saturation", "saturation"),
      range("saturation_range", "saturation"),
      ood::ParamSpec::real("hue", "hue spread h: shift uniform in [-h, h]; 0 = off").default_value(0.0).min(0.0).max(0.5),
      ood::ParamSpec::list("hue_range", ood::ParamType::Float, "hue shift range [min, max], -0.5 <= min <= max <= 0.5")
          .items(2, 2)
          .min(-0.5)
          .max(0.5)
          .optional(),
  };
  info.check = [](const ood::Params& p) { ranges_of(p); };
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<ColorJitter>(ranges_of(p));
  });
}

}  // namespace

OOD_PLUGIN("color-jitter", "ColorJitter augmentation", register_components)
