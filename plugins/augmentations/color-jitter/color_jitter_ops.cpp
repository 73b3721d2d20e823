#include "color_jitter_ops.hpp"

#include "ood/error.hpp"

namespace ood_color_jitter {

namespace {

/// torchvision's _blend for float images: ratio * a + (1 - ratio) * b, clamped to [0, 1].
at::Tensor blend(const at::Tensor& a, const at::Tensor& b, double ratio) {
  return (a * ratio + b * (1.0 - ratio)).clamp(0, 1);
}

bool is_grey(const at::Tensor& image) { return image.size(-3) == 1; }

/// torchvision's _rgb2hsv: [3, H, W] RGB -> HSV, every value in [0, 1].
at::Tensor rgb_to_hsv(const at::Tensor& image) {
  const at::Tensor r = image.select(-3, 0), g = image.select(-3, 1), b = image.select(-3, 2);
  const at::Tensor maxc = std::get<0>(image.max(-3));
  const at::Tensor minc = std::get<0>(image.min(-3));
  // Where max == min (grey pixels) the divisors are replaced by 1: no NaN, and h works
  // out to 0 there.
  const at::Tensor eqc = maxc == minc;
  const at::Tensor cr = maxc - minc;
  const at::Tensor ones = at::ones_like(maxc);
  const at::Tensor s = cr / at::where(eqc, ones, maxc);
  const at::Tensor cr_divisor = at::where(eqc, ones, cr);
  const at::Tensor rc = (maxc - r) / cr_divisor;
  const at::Tensor gc = (maxc - g) / cr_divisor;
  const at::Tensor bc = (maxc - b) / cr_divisor;
  const at::Tensor hr = (maxc == r) * (bc - gc);
  const at::Tensor hg = ((maxc == g) & (maxc != r)) * (rc + 2.0 - bc);
  const at::Tensor hb = ((maxc != g) & (maxc != r)) * (gc + 4.0 - rc);
  const at::Tensor h = at::fmod((hr + hg + hb) / 6.0 + 1.0, 1.0);
  return at::stack({h, s, maxc}, -3);
}

/// torchvision's _hsv2rgb: the sector i = floor(6 h) mod 6 picks each channel among v, p,
/// q, t (torchvision selects with a one-hot einsum; gathering selects the same values).
at::Tensor hsv_to_rgb(const at::Tensor& image) {
  const at::Tensor h = image.select(-3, 0), s = image.select(-3, 1), v = image.select(-3, 2);
  const at::Tensor sector_float = at::floor(h * 6.0);
  const at::Tensor f = h * 6.0 - sector_float;
  const at::Tensor sector = at::remainder(sector_float.to(at::kInt), 6).to(at::kLong).unsqueeze(0);
  const at::Tensor p = (v * (1.0 - s)).clamp(0.0, 1.0);
  const at::Tensor q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
  const at::Tensor t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
  const at::Tensor red = at::stack({v, q, p, p, t, v}).gather(0, sector);
  const at::Tensor green = at::stack({t, v, v, q, p, p}).gather(0, sector);
  const at::Tensor blue = at::stack({p, p, t, v, v, q}).gather(0, sector);
  return at::cat({red, green, blue}, 0);
}

double uniform_float32(at::Generator& generator, const std::pair<double, double>& range) {
  // torchvision: float(torch.empty(1).uniform_(low, high)).
  return at::empty({1}, at::kFloat).uniform_(range.first, range.second, generator).item<double>();
}

}  // namespace

at::Tensor rgb_to_grayscale(const at::Tensor& image) {
  if (is_grey(image)) return image.clone();
  const at::Tensor r = image.select(-3, 0), g = image.select(-3, 1), b = image.select(-3, 2);
  return (r * 0.2989 + g * 0.587 + b * 0.114).to(image.scalar_type()).unsqueeze(-3);
}

at::Tensor adjust_brightness(const at::Tensor& image, double factor) {
  return blend(image, at::zeros_like(image), factor);
}

at::Tensor adjust_contrast(const at::Tensor& image, double factor) {
  const at::Tensor mean = at::mean(rgb_to_grayscale(image), {-3, -2, -1}, true);
  return blend(image, mean, factor);
}

at::Tensor adjust_saturation(const at::Tensor& image, double factor) {
  if (is_grey(image)) return image;  // as torchvision (and PIL)
  return blend(image, rgb_to_grayscale(image), factor);
}

at::Tensor adjust_hue(const at::Tensor& image, double factor) {
  if (!(factor >= -0.5 && factor <= 0.5))
    throw ood::InvalidArgument("color-jitter: hue factor " + std::to_string(factor) + " is not in [-0.5, 0.5]");
  if (is_grey(image)) return image;
  const at::Tensor hsv = rgb_to_hsv(image);
  const at::Tensor h = at::remainder(hsv.select(-3, 0) + factor, 1.0);
  return hsv_to_rgb(at::stack({h, hsv.select(-3, 1), hsv.select(-3, 2)}, -3));
}

JitterDraw draw_jitter(const JitterRanges& ranges, at::Generator& generator) {
  JitterDraw draw;
  const at::Tensor order = at::randperm(4, generator, at::kLong);
  for (std::size_t i = 0; i < 4; ++i) draw.order[i] = order[static_cast<std::int64_t>(i)].item<std::int64_t>();
  if (ranges.brightness) draw.brightness = uniform_float32(generator, *ranges.brightness);
  if (ranges.contrast) draw.contrast = uniform_float32(generator, *ranges.contrast);
  if (ranges.saturation) draw.saturation = uniform_float32(generator, *ranges.saturation);
  if (ranges.hue) draw.hue = uniform_float32(generator, *ranges.hue);
  return draw;
}

at::Tensor apply_jitter(const at::Tensor& image, const JitterDraw& draw) {
  at::Tensor out = image;
  for (const std::int64_t adjustment : draw.order) {
    if (adjustment == 0 && draw.brightness) out = adjust_brightness(out, *draw.brightness);
    if (adjustment == 1 && draw.contrast) out = adjust_contrast(out, *draw.contrast);
    if (adjustment == 2 && draw.saturation) out = adjust_saturation(out, *draw.saturation);
    if (adjustment == 3 && draw.hue) out = adjust_hue(out, *draw.hue);
  }
  return out;
}

}  // namespace ood_color_jitter
