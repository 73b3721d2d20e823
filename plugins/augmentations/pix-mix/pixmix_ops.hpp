#pragma once
// The building blocks of PixMix, shared by the plugin (pix_mix.cpp) and its tests
// (test_pix_mix.cpp), which check each image operation against PIL 9.4.
//
// pytorch-ood's PixMixDataset works on PIL images: its five "augment" operations are
// PIL's ImageOps functions (through torchvision's functional API) on 8-bit images. The
// byte-level functions here reproduce them on uint8 tensors [C, H, W], one channel at
// a time (PIL supports only modes L and RGB for them; other channel counts get the same
// per-channel treatment). augment() adds the float <-> byte conversions of torchvision's
// to_pil_image (x * 255 truncated) and to_tensor (/ 255).
#include <ATen/ATen.h>
#include <ATen/core/Generator.h>

#include <cstdint>

namespace ood_pixmix {

/// pytorch-ood's augmentation list, in its order; augment() picks one uniformly.
enum class AugmentOp : int { Equalize = 0, Autocontrast = 1, Posterize = 2, Rotate = 3, Solarize = 4 };
inline constexpr int kAugmentOpCount = 5;

/// PIL ImageOps.equalize: histogram equalisation of each channel.
at::Tensor equalize(const at::Tensor& bytes);
/// PIL ImageOps.autocontrast(cutoff=0): each channel's [min, max] stretched to [0, 255].
at::Tensor autocontrast(const at::Tensor& bytes);
/// PIL ImageOps.posterize: keeps the top `bits` bits (0..8) of every value.
at::Tensor posterize(const at::Tensor& bytes, std::int64_t bits);
/// PIL ImageOps.solarize: values >= threshold become 255 - value.
at::Tensor solarize(const at::Tensor& bytes, std::int64_t threshold);
/// PIL Image.rotate(angle) with the defaults torchvision's F.rotate uses: counter-clockwise
/// by `degrees` about the image centre, nearest neighbour, same size, fill 0.
at::Tensor rotate(const at::Tensor& bytes, double degrees);

/// torchvision's to_pil_image on a float image: (x * 255) truncated to uint8. Values
/// outside [0, 1] are clamped first (torchvision's byte() would wrap them).
at::Tensor to_bytes(const at::Tensor& image);
/// torchvision's to_tensor on 8-bit data: float32 / 255.
at::Tensor from_bytes(const at::Tensor& bytes);
/// One augmentation of a float image [C, H, W] in [0, 1] through 8 bits, as pytorch-ood's
/// `augment_input` followed by to_tensor: severity is posterize's bits, rotate's angle in
/// degrees and solarize's threshold (equalize and autocontrast ignore it).
at::Tensor augment(const at::Tensor& image, AugmentOp op, std::int64_t severity);

/// PixMix's `add`: ((a (2 x - 1) + b (2 y - 1)) + 1) / 2 (not clipped).
at::Tensor mix_add(const at::Tensor& x, const at::Tensor& y, float a, float b);
/// PixMix's `multiply`: ((2 x)^a * max(2 y, 1e-37)^b) / 2 (not clipped).
at::Tensor mix_multiply(const at::Tensor& x, const at::Tensor& y, float a, float b);

/// Gamma(shape, 1), drawn from `generator` only (Marsaglia and Tsang's method).
double sample_gamma(at::Generator& generator, double shape);
/// Beta(alpha, beta) as X / (X + Y) with X ~ Gamma(alpha), Y ~ Gamma(beta).
double sample_beta(at::Generator& generator, double alpha, double beta);

/// PixMix's mixing weights `get_ab(beta)`: with probability 1/2, a ~ Beta(beta, 1) and
/// b ~ Beta(1, beta); otherwise a = 1 + Beta(1, beta) and b = -Beta(1, beta).
struct MixWeights {
  float a, b;
};
MixWeights sample_mix_weights(at::Generator& generator, double beta);

}  // namespace ood_pixmix
