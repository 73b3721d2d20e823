#include "pixmix_ops.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>

#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood_pixmix {

namespace {

using Lut = std::array<std::uint8_t, 256>;
using Histogram = std::array<std::int64_t, 256>;

/// A contiguous uint8 copy [C, H, W] that the byte operations may write into.
at::Tensor writable_bytes(const at::Tensor& bytes, const char* op) {
  if (bytes.dim() != 3 || bytes.scalar_type() != at::kByte)
    throw ood::ShapeError(std::string("pix-mix: ") + op + " expects a uint8 image [C, H, W]");
  return bytes.contiguous().clone();
}

Histogram histogram(const std::uint8_t* channel, std::int64_t count) {
  Histogram h{};
  for (std::int64_t i = 0; i < count; ++i) ++h[channel[i]];
  return h;
}

void apply_lut(std::uint8_t* channel, std::int64_t count, const Lut& lut) {
  for (std::int64_t i = 0; i < count; ++i) channel[i] = lut[channel[i]];
}

Lut identity_lut() {
  Lut lut{};
  for (int i = 0; i < 256; ++i) lut[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  return lut;
}

/// Runs `make_lut(histogram)` on every channel and maps the channel through it, as PIL's
/// ImageOps functions do with one 256-entry table per band.
template <typename MakeLut>
at::Tensor per_channel_lut(const at::Tensor& bytes, const char* op, MakeLut make_lut) {
  at::Tensor out = writable_bytes(bytes, op);
  const std::int64_t plane = out.size(1) * out.size(2);
  std::uint8_t* data = out.data_ptr<std::uint8_t>();
  for (std::int64_t c = 0; c < out.size(0); ++c) {
    std::uint8_t* channel = data + c * plane;
    apply_lut(channel, plane, make_lut(histogram(channel, plane)));
  }
  return out;
}

/// PIL's table values are clipped to 0..255 when the table is applied (Image.point on
/// 8-bit bands); equalize's table can exceed 255 past the last occupied bin.
std::uint8_t clip8(std::int64_t v) { return static_cast<std::uint8_t>(std::clamp<std::int64_t>(v, 0, 255)); }

/// Python's round(x, 15): the decimal rounding PIL applies to the rotation matrix. glibc's
/// printf rounds correctly (to even on ties) like Python's dtoa, and strtod reads back the
/// nearest double, so the result is Python's to the last bit.
double round15(double x) {
  char text[64];
  std::snprintf(text, sizeof text, "%.15f", x);
  return std::strtod(text, nullptr);
}

/// Python's float modulo (result has the sign of the divisor).
double python_mod(double x, double m) {
  double r = std::fmod(x, m);
  if (r != 0.0) {
    if ((m < 0) != (r < 0)) r += m;
  } else {
    r = std::copysign(0.0, m);
  }
  return r;
}

/// libImaging's FLOOR and its 16.16 fixed-point conversion FIX.
int pil_floor(double v) { return v < 0.0 ? static_cast<int>(std::floor(v)) : static_cast<int>(v); }
std::int64_t pil_fix(double v) { return pil_floor(v * 65536.0 + 0.5); }
bool fits_fixed(const double a[6], double x, double y) {
  return std::fabs(a[0] * x + a[1] * y + a[2]) < 32768.0 && std::fabs(a[3] * x + a[4] * y + a[5]) < 32768.0;
}

/// libImaging's nearest-neighbour affine transform (ImagingTransformAffine): output pixel
/// (x, y) reads the input at the matrix image of the pixel centre, or stays 0 outside.
/// PIL uses 16.16 fixed point when the corners fit it (every image below 32768 pixels a
/// side) and doubles accumulated along the row otherwise; both are reproduced.
at::Tensor affine_nearest(const at::Tensor& bytes, const double a[6]) {
  const at::Tensor in = bytes.contiguous();
  const std::int64_t channels = in.size(0), height = in.size(1), width = in.size(2);
  at::Tensor out = at::zeros_like(in);
  const std::uint8_t* src = in.data_ptr<std::uint8_t>();
  std::uint8_t* dst = out.data_ptr<std::uint8_t>();
  const std::int64_t plane = height * width;
  const auto copy_pixel = [&](std::int64_t x, std::int64_t y, std::int64_t xin, std::int64_t yin) {
    if (xin < 0 || xin >= width || yin < 0 || yin >= height) return;
    for (std::int64_t c = 0; c < channels; ++c) dst[c * plane + y * width + x] = src[c * plane + yin * width + xin];
  };
  const auto w = static_cast<double>(width), h = static_cast<double>(height);
  if (fits_fixed(a, 0, 0) && fits_fixed(a, w, h) && fits_fixed(a, 0, h) && fits_fixed(a, w, 0)) {
    const std::int64_t a0 = pil_fix(a[0]), a1 = pil_fix(a[1]), a3 = pil_fix(a[3]), a4 = pil_fix(a[4]);
    const std::int64_t a2 = pil_fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
    const std::int64_t a5 = pil_fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    for (std::int64_t y = 0; y < height; ++y)
      for (std::int64_t x = 0; x < width; ++x)
        // >> on a negative value floors (C++20 defines it as arithmetic), as in PIL.
        copy_pixel(x, y, (a2 + y * a1 + x * a0) >> 16, (a5 + y * a4 + x * a3) >> 16);
    return out;
  }
  double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
  double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  const auto coord = [](double v) -> std::int64_t { return v < 0.0 ? -1 : static_cast<std::int64_t>(v); };
  for (std::int64_t y = 0; y < height; ++y) {
    double xx = xo, yy = yo;
    for (std::int64_t x = 0; x < width; ++x) {
      copy_pixel(x, y, coord(xx), coord(yy));
      xx += a[0];
      yy += a[3];
    }
    xo += a[1];
    yo += a[4];
  }
  return out;
}

/// A draw from N(0, 1) by Box-Muller on two uniforms of the generator (one value used, so
/// that no state is kept between calls).
double sample_normal(at::Generator& generator) {
  const double u1 = 1.0 - ood::uniform01(generator);  // (0, 1]: log stays finite
  const double u2 = ood::uniform01(generator);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace

at::Tensor equalize(const at::Tensor& bytes) {
  return per_channel_lut(bytes, "equalize", [](const Histogram& h) {
    // PIL: step = (pixels - pixels in the last occupied bin) // 255; the table maps bin i
    // to (step // 2 + pixels below i) // step.
    std::int64_t occupied = 0, total = 0, last = 0;
    for (std::int64_t count : h)
      if (count) {
        ++occupied;
        total += count;
        last = count;
      }
    if (occupied <= 1) return identity_lut();
    const std::int64_t step = (total - last) / 255;
    if (step == 0) return identity_lut();
    Lut lut{};
    std::int64_t n = step / 2;
    for (std::size_t i = 0; i < 256; ++i) {
      lut[i] = clip8(n / step);
      n += h[i];
    }
    return lut;
  });
}

at::Tensor autocontrast(const at::Tensor& bytes) {
  return per_channel_lut(bytes, "autocontrast", [](const Histogram& h) {
    int lo = 0, hi = 255;
    while (lo < 255 && !h[static_cast<std::size_t>(lo)]) ++lo;
    while (hi > 0 && !h[static_cast<std::size_t>(hi)]) --hi;
    if (hi <= lo) return identity_lut();
    // In doubles and truncated toward zero, as PIL's int(ix * scale + offset).
    const double scale = 255.0 / static_cast<double>(hi - lo);
    const double offset = -static_cast<double>(lo) * scale;
    Lut lut{};
    for (int i = 0; i < 256; ++i)
      lut[static_cast<std::size_t>(i)] = clip8(static_cast<std::int64_t>(static_cast<double>(i) * scale + offset));
    return lut;
  });
}

at::Tensor posterize(const at::Tensor& bytes, std::int64_t bits) {
  if (bits < 0 || bits > 8) throw ood::InvalidArgument("pix-mix: posterize keeps 0..8 bits, got " + std::to_string(bits));
  const auto mask = static_cast<std::uint8_t>(~((1u << (8 - bits)) - 1u) & 0xFFu);
  Lut lut{};
  for (std::size_t i = 0; i < 256; ++i) lut[i] = static_cast<std::uint8_t>(i & mask);
  return per_channel_lut(bytes, "posterize", [&lut](const Histogram&) { return lut; });
}

at::Tensor solarize(const at::Tensor& bytes, std::int64_t threshold) {
  Lut lut{};
  for (std::int64_t i = 0; i < 256; ++i)
    lut[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i < threshold ? i : 255 - i);
  return per_channel_lut(bytes, "solarize", [&lut](const Histogram&) { return lut; });
}

at::Tensor rotate(const at::Tensor& bytes, double degrees) {
  const at::Tensor in = writable_bytes(bytes, "rotate");
  const std::int64_t height = in.size(1), width = in.size(2);
  // PIL's shortcuts for exact quarter turns: copies and transposes, no resampling.
  const double angle = python_mod(degrees, 360.0);
  if (angle == 0.0) return in;
  if (angle == 180.0) return in.flip({1, 2}).contiguous();
  if ((angle == 90.0 || angle == 270.0) && width == height)
    return at::rot90(in, angle == 90.0 ? 1 : -1, {1, 2}).contiguous();
  // Image.rotate's inverse matrix (output -> input) about the centre (w / 2, h / 2), with
  // the same operations in the same order as PIL's Python code.
  const double cx = static_cast<double>(width) / 2.0, cy = static_cast<double>(height) / 2.0;
  const double radians = -(angle * (std::numbers::pi / 180.0));
  double m[6] = {round15(std::cos(radians)),  round15(std::sin(radians)), 0.0,
                 round15(-std::sin(radians)), round15(std::cos(radians)), 0.0};
  const double m2 = m[0] * -cx + m[1] * -cy + m[2];
  const double m5 = m[3] * -cx + m[4] * -cy + m[5];
  m[2] = m2 + cx;
  m[5] = m5 + cy;
  return affine_nearest(in, m);
}

at::Tensor to_bytes(const at::Tensor& image) {
  return image.to(at::kFloat).mul(255).clamp_(0, 255).to(at::kByte);
}

at::Tensor from_bytes(const at::Tensor& bytes) { return bytes.to(at::kFloat).div(255); }

at::Tensor augment(const at::Tensor& image, AugmentOp op, std::int64_t severity) {
  const at::Tensor bytes = to_bytes(image);
  switch (op) {
    case AugmentOp::Equalize: return from_bytes(equalize(bytes));
    case AugmentOp::Autocontrast: return from_bytes(autocontrast(bytes));
    case AugmentOp::Posterize: return from_bytes(posterize(bytes, severity));
    case AugmentOp::Rotate: return from_bytes(rotate(bytes, static_cast<double>(severity)));
    case AugmentOp::Solarize: return from_bytes(solarize(bytes, severity));
  }
  throw ood::InvalidArgument("pix-mix: unknown augmentation " + std::to_string(static_cast<int>(op)));
}

at::Tensor mix_add(const at::Tensor& x, const at::Tensor& y, float a, float b) {
  const at::Tensor out = (x * 2 - 1) * a + (y * 2 - 1) * b;
  return (out + 1) / 2;
}

at::Tensor mix_multiply(const at::Tensor& x, const at::Tensor& y, float a, float b) {
  const at::Tensor out = (x * 2).pow(a) * (y * 2).clamp_min(1e-37).pow(b);
  return out / 2;
}

double sample_gamma(at::Generator& generator, double shape) {
  if (shape < 1.0) {
    // Gamma(s) = Gamma(s + 1) * U^(1/s) for s < 1 (Marsaglia and Tsang, section 6).
    const double boosted = sample_gamma(generator, shape + 1.0);
    const double u = 1.0 - ood::uniform01(generator);
    return boosted * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0, v = 0.0;
    do {
      x = sample_normal(generator);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - ood::uniform01(generator);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double sample_beta(at::Generator& generator, double alpha, double beta) {
  const double x = sample_gamma(generator, alpha);
  const double y = sample_gamma(generator, beta);
  // Both draws underflow to 0 only for tiny shapes, where Beta tends to a coin flip with
  // P(1) = alpha / (alpha + beta).
  if (x + y == 0.0) return ood::uniform01(generator) < alpha / (alpha + beta) ? 1.0 : 0.0;
  return x / (x + y);
}

MixWeights sample_mix_weights(at::Generator& generator, double beta) {
  // float32 as pytorch-ood's np.float32 casts.
  if (ood::uniform01(generator) < 0.5) {
    const auto a = static_cast<float>(sample_beta(generator, beta, 1.0));
    const auto b = static_cast<float>(sample_beta(generator, 1.0, beta));
    return {a, b};
  }
  const float a = 1.0f + static_cast<float>(sample_beta(generator, 1.0, beta));
  const float b = -static_cast<float>(sample_beta(generator, 1.0, beta));
  return {a, b};
}

}  // namespace ood_pixmix
