#include "crop_box.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace ood_random_resized_crop {

namespace {

/// Python's int(round(x)) for the box sides: halves go to the even neighbour.
std::int64_t round_half_even(double x) { return static_cast<std::int64_t>(std::nearbyint(x)); }

}  // namespace

CropBox sample_crop_box(std::int64_t height, std::int64_t width, std::pair<double, double> scale,
                        std::pair<double, double> ratio, at::Generator& generator) {
  const auto area = static_cast<double>(height * width);
  // torchvision: log_ratio = torch.log(torch.tensor(ratio)), float32; the uniform draws
  // are float32 tensors and their exp a float32 too.
  const at::Tensor log_ratio =
      at::log(at::tensor(std::vector<float>{static_cast<float>(ratio.first), static_cast<float>(ratio.second)}));
  const double log_low = log_ratio[0].item<double>(), log_high = log_ratio[1].item<double>();
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area =
        area * at::empty({1}, at::kFloat).uniform_(scale.first, scale.second, generator).item<double>();
    const double aspect_ratio =
        at::exp(at::empty({1}, at::kFloat).uniform_(log_low, log_high, generator)).item<double>();
    const std::int64_t w = round_half_even(std::sqrt(target_area * aspect_ratio));
    const std::int64_t h = round_half_even(std::sqrt(target_area / aspect_ratio));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = at::randint(0, height - h + 1, {1}, generator, at::kLong).item<std::int64_t>();
      box.left = at::randint(0, width - w + 1, {1}, generator, at::kLong).item<std::int64_t>();
      return box;
    }
  }
  CropBox box;
  box.fallback = true;
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  const double min_ratio = std::min(ratio.first, ratio.second), max_ratio = std::max(ratio.first, ratio.second);
  if (in_ratio < min_ratio) {
    box.width = width;
    box.height = round_half_even(static_cast<double>(box.width) / min_ratio);
  } else if (in_ratio > max_ratio) {
    box.height = height;
    box.width = round_half_even(static_cast<double>(box.height) * max_ratio);
  } else {
    box.width = width;
    box.height = height;
  }
  // torchvision would fail on an empty box (a very thin image with an extreme ratio);
  // one row or column is the nearest box that exists.
  box.height = std::max<std::int64_t>(box.height, 1);
  box.width = std::max<std::int64_t>(box.width, 1);
  // Python's // floors; both differences are >= 0 here.
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

}  // namespace ood_random_resized_crop
