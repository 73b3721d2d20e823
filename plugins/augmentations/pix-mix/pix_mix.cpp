// PixMix (Hendrycks et al., CVPR 2022) as pytorch-ood's PixMixDataset: the sample is
// mixed, a random number of times, with augmented copies of itself and with a picture of
// a mixing set (fractals, feature visualisations), then normalised. The building blocks
// (the PIL operations, the mixing formulas, Beta draws) are in pixmix_ops.cpp.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "pixmix_ops.hpp"

namespace {

using namespace ood_pixmix;

struct Settings {
  double beta = 3.0;
  std::int64_t aug_severity = 3;
  std::int64_t k = 4;
  std::vector<double> mean, std;
};

class PixMix final : public ood::Augmentation {
 public:
  PixMix(std::shared_ptr<ood::Dataset> mixing_set, Settings settings)
      : mixing_set_(std::move(mixing_set)), settings_(std::move(settings)) {}

  ood::Sample apply(ood::Sample s, at::Generator& gen) const override {
    if (!s.input.defined() || s.input.dim() != 3 || !at::isFloatingType(s.input.scalar_type()) ||
        s.input.numel() == 0)
      throw ood::ShapeError("pix-mix: input must be a floating image [C, H, W], got " +
                            ood::describe_tensor(s.input));
    const std::int64_t channels = s.input.size(0);
    const at::Tensor mean = per_channel("mean", settings_.mean, channels, s.input);
    const at::Tensor std = per_channel("std", settings_.std, channels, s.input);
    const at::Tensor original = s.input.to(at::kFloat);

    // The draws in pytorch-ood's order: mixing picture, first augmentation, number of
    // rounds, then per round the partner, the operation and its weights.
    // The picture is read even when no round uses it, as pytorch-ood does, so that a
    // mixing set that does not fit the samples fails on the first sample, not by chance.
    const at::Tensor mixing_picture = mixing_picture_for(ood::uniform_int(gen, 0, mixing_set_->size()), original);
    const auto augmented = [&] {
      const auto op = static_cast<AugmentOp>(ood::uniform_int(gen, 0, kAugmentOpCount));
      return augment(original, op, settings_.aug_severity);
    };
    at::Tensor mixed = ood::uniform01(gen) < 0.5 ? augmented() : original;
    const std::int64_t rounds = ood::uniform_int(gen, 0, settings_.k + 1);
    for (std::int64_t round = 0; round < rounds; ++round) {
      const at::Tensor partner = ood::uniform01(gen) < 0.5 ? augmented() : mixing_picture;
      const bool add = ood::uniform_int(gen, 0, 2) == 0;
      const MixWeights w = sample_mix_weights(gen, settings_.beta);
      mixed = (add ? mix_add(mixed, partner, w.a, w.b) : mix_multiply(mixed, partner, w.a, w.b)).clamp(0, 1);
    }
    s.input = ((mixed - mean) / std).contiguous();
    return s;
  }

 private:
  /// Normalize's mean or std as a float32 tensor broadcasting over [C, H, W].
  static at::Tensor per_channel(const char* name, const std::vector<double>& values, std::int64_t channels,
                                const at::Tensor& input) {
    const auto n = static_cast<std::int64_t>(values.size());
    if (n != 1 && n != channels)
      throw ood::ShapeError("pix-mix: " + std::string(name) + " has " + std::to_string(n) +
                            " values for an input with " + std::to_string(channels) + " channels, " +
                            ood::describe_tensor(input) + " (give 1 or " + std::to_string(channels) + ")");
    return at::tensor(values, at::kDouble).to(at::kFloat).view({-1, 1, 1});
  }

  /// Mixing picture `index`, fitted to the sample: grey pictures get the sample's channel
  /// count, and other sizes are resized bilinearly (pytorch-ood requires equal sizes).
  at::Tensor mixing_picture_for(std::int64_t index, const at::Tensor& sample) const {
    at::Tensor picture = mixing_set_->get(index).input;
    if (!picture.defined() || picture.dim() != 3 || !at::isFloatingType(picture.scalar_type()) ||
        picture.numel() == 0)
      throw ood::ShapeError("pix-mix: mixing_set sample " + std::to_string(index) +
                            " must be a floating image [C, H, W], got " + ood::describe_tensor(picture));
    picture = picture.to(at::kFloat);
    const std::int64_t channels = sample.size(0);
    if (picture.size(0) != channels) {
      if (picture.size(0) != 1)
        throw ood::ShapeError("pix-mix: mixing_set sample " + std::to_string(index) + " " +
                              ood::describe_tensor(picture) + " has " + std::to_string(picture.size(0)) +
                              " channels, the input " + ood::describe_tensor(sample) + " " +
                              std::to_string(channels) + " (grey pictures are repeated, nothing else is converted)");
      picture = picture.expand({channels, -1, -1});
    }
    if (picture.size(1) != sample.size(1) || picture.size(2) != sample.size(2))
      picture = at::upsample_bilinear2d(picture.unsqueeze(0), {sample.size(1), sample.size(2)}, false).squeeze(0);
    return picture.contiguous();
  }

  std::shared_ptr<ood::Dataset> mixing_set_;
  Settings settings_;
};

void check_params(const ood::Params& p) {
  const auto mean = p.get_float_list("mean"), std = p.get_float_list("std");
  if (mean.size() > 1 && std.size() > 1 && mean.size() != std.size())
    throw ood::InvalidArgument(p.pointer("std") + ": " + std::to_string(std.size()) + " values, but mean has " +
                               std::to_string(mean.size()) + " (give one per channel, or a single value)");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Augmentation;
  info.name = "pix-mix";
  info.summary = "PixMix: mixes the image with augmented copies and mixing-set pictures";
  info.paper = "Hendrycks, Zou, Mazeika, Tang, Li, Song & Steinhardt, PixMix: Dreamlike Pictures Comprehensively "
               "Improve Safety Measures, CVPR";
  info.year = 2022;
  info.doc =
      "As pytorch-ood's PixMixDataset. mixed = augment(x) or x (p 1/2); then randint(0..k) times:\n"
      "partner = augment(x) or the mixing picture (p 1/2), mixed = clip(add or multiply (p 1/2)\n"
      "(mixed, partner), 0, 1) with a, b from get_ab(beta): a ~ Beta(beta, 1), b ~ Beta(1, beta), or\n"
      "(p 1/2) a = 1 + Beta(1, beta), b = -Beta(1, beta); add = (a(2x-1) + b(2y-1) + 1) / 2,\n"
      "multiply = (2x)^a * max(2y, 1e-37)^b / 2. Finally (mixed - mean) / std per channel.\n"
      "augment picks one of PIL's equalize, autocontrast, posterize(bits = aug_severity),\n"
      "rotate(aug_severity degrees counter-clockwise, nearest, fill 0), solarize(threshold =\n"
      "aug_severity), each on the image as 8 bits ((x * 255) truncated, as torchvision's\n"
      "to_pil_image) and back / 255; they equal PIL 9.4's results bit for bit.\n"
      "NOTE the defaults mean = std = [1, 1, 1] are pytorch-ood's: the output is mixed - 1, in\n"
      "[-1, 0]. The paper's code uses mean = std = [0.5, 0.5, 0.5]; mean [0, 0, 0] with std\n"
      "[1, 1, 1] leaves the output in [0, 1]. mean and std take 1 value or one per channel.\n"
      "The mixing picture is mixing_set[uniform index].input; when its H x W differ from the\n"
      "sample's it is resized bilinearly (align_corners false; pytorch-ood requires equal sizes),\n"
      "and a grey picture is repeated to the sample's channels (more channels is an error).\n"
      "Differences from pytorch-ood: randomness comes from the loader's per-sample generator,\n"
      "not numpy's global one (same distributions, other numbers); the sample and the mixing\n"
      "picture enter as floats (pytorch-ood's are 8-bit PIL images), only augmented copies pass\n"
      "through 8 bits; channel counts other than 1 and 3 (which PIL rejects) are processed per\n"
      "channel as well.";
  info.params = {
      ood::ParamSpec::component("mixing_set", ood::Kind::Dataset,
                                "pictures to mix in (fractals, feature visualisations), images [C, H, W] in [0, 1]"),
      ood::ParamSpec::real("beta", "shape of the Beta distributions of the mixing weights")
          .default_value(3.0)
          .min(0.0, true),
      ood::ParamSpec::integer("aug_severity",
                              "posterize bits, rotation degrees and solarize threshold of the augmentations "
                              "(0..8: posterize keeps at most 8 bits)")
          .default_value(3)
          .min(0)
          .max(8),
      ood::ParamSpec::integer("k", "at most this many mixing rounds (uniform in 0..k)").default_value(4).min(0),
      ood::ParamSpec::list("mean", ood::ParamType::Float,
                           "subtracted per channel at the end (pytorch-ood's default 1; the paper's 0.5)")
          .default_value(std::vector<double>{1.0, 1.0, 1.0})
          .items(1),
      ood::ParamSpec::list("std", ood::ParamType::Float,
                           "divided per channel at the end (pytorch-ood's default 1; the paper's 0.5)")
          .default_value(std::vector<double>{1.0, 1.0, 1.0})
          .items(1)
          .min(0.0, true),
  };
  info.check = check_params;
  registrar.add_augmentation(info, [](const ood::Params& p, ood::Context& context) {
    check_params(p);
    auto mixing_set = context.make_dataset(p.get_component("mixing_set"));
    if (!mixing_set || mixing_set->size() <= 0)
      throw ood::InvalidArgument(p.pointer("mixing_set") + ": the mixing set has no samples");
    Settings settings;
    settings.beta = p.get_float("beta");
    settings.aug_severity = p.get_int("aug_severity");
    settings.k = p.get_int("k");
    settings.mean = p.get_float_list("mean");
    settings.std = p.get_float_list("std");
    return std::make_shared<PixMix>(std::move(mixing_set), std::move(settings));
  });
}

}  // namespace

OOD_PLUGIN("pix-mix", "PixMix augmentation", register_components)
