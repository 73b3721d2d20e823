#pragma once
// torchvision 0.14's ColorJitter on float image tensors, shared by the plugin
// (color_jitter.cpp) and its tests (test_color_jitter.cpp), which compare every function
// with torchvision's: the adjust_* functions of functional_tensor.py with the same ATen
// operations in the same order (so the same float32 roundings), and the parameter draws
// of ColorJitter.get_params with the same ATen random calls (so a generator seeded like
// torch.manual_seed gives torchvision's factors and order).
//
// Images are floating [C, H, W] with C = 1 or 3, values in [0, 1]; every adjustment
// clamps to [0, 1] as torchvision's _blend (hue clamps inside its HSV -> RGB step).
#include <ATen/ATen.h>
#include <ATen/core/Generator.h>

#include <array>
#include <optional>
#include <utility>

namespace ood_color_jitter {

/// 0.2989 R + 0.587 G + 0.114 B as [1, H, W]; a grey image is returned as a copy.
at::Tensor rgb_to_grayscale(const at::Tensor& image);
/// Blend with black: factor * image, clamped.
at::Tensor adjust_brightness(const at::Tensor& image, double factor);
/// Blend with the mean of the grayscale image.
at::Tensor adjust_contrast(const at::Tensor& image, double factor);
/// Blend with the grayscale image; identity for grey images.
at::Tensor adjust_saturation(const at::Tensor& image, double factor);
/// Hue shifted by `factor` (in [-0.5, 0.5]) turns through HSV; identity for grey images.
at::Tensor adjust_hue(const at::Tensor& image, double factor);

using Range = std::optional<std::pair<double, double>>;  // empty: the adjustment is off

/// The ranges of ColorJitter, after torchvision's _check_input (empty when the range is
/// the neutral point: [1, 1] for brightness, contrast and saturation, [0, 0] for hue).
struct JitterRanges {
  Range brightness, contrast, saturation, hue;
};

/// One draw of ColorJitter.get_params: the order of the four adjustments (a permutation
/// of 0 brightness, 1 contrast, 2 saturation, 3 hue) and the factors of those enabled.
struct JitterDraw {
  std::array<std::int64_t, 4> order{};
  std::optional<double> brightness, contrast, saturation, hue;
};

/// torch.randperm(4), then a float32 uniform draw per enabled range, in torchvision's order.
JitterDraw draw_jitter(const JitterRanges& ranges, at::Generator& generator);
/// The enabled adjustments of `draw` in its order, as ColorJitter.forward.
at::Tensor apply_jitter(const at::Tensor& image, const JitterDraw& draw);

}  // namespace ood_color_jitter
