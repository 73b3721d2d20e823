#pragma once
// The crop box of torchvision 0.14's RandomResizedCrop.get_params, shared by the plugin
// (random_resized_crop.cpp) and its tests (test_random_resized_crop.cpp). The draws are
// torchvision's ATen calls (float32 uniforms, randint) in its order, so a generator
// seeded like torch.manual_seed(s) gives torchvision's box for that seed.
#include <ATen/core/Generator.h>

#include <cstdint>
#include <utility>

namespace ood_random_resized_crop {

struct CropBox {
  std::int64_t top = 0, left = 0, height = 0, width = 0;
  /// True when none of the 10 attempts fit and the centre crop was taken.
  bool fallback = false;
};

/// Up to 10 attempts: area uniform in scale * H * W, aspect ratio log-uniform in `ratio`,
/// side lengths rounded half to even (Python's round); the first box that fits the
/// image gets a uniform position. Otherwise the largest centred box whose aspect ratio
/// is clamped into `ratio` (the whole image when its own ratio is inside).
CropBox sample_crop_box(std::int64_t height, std::int64_t width, std::pair<double, double> scale,
                        std::pair<double, double> ratio, at::Generator& generator);

}  // namespace ood_random_resized_crop
