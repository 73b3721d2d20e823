// ASH: activation shaping (Djurisic, Bozanic, Ashok & Liu, "Extremely Simple Activation
// Shaping for Out-of-Distribution Detection", ICLR 2023), as pytorch-ood's ASH.
//
// On the feature map before global pooling, per sample over its n = C*H*W entries,
// keeping k = n - round_half_even(n * percentile) entries (the top k):
//   ash-p: keep the top-k entries, zero the rest
//   ash-b: s1 = sum of all entries; top-k entries set to s1 / k, the rest 0
//   ash-s: s1 = sum of all entries, keep the top-k (sum s2), multiply by exp(s1 / s2)
// then logits = the model's path from the map to the logits (head(pool(map)), or a
// TorchScript module's forward_from_before_pool) and score = detector(logits).
#include <ATen/ATen.h>

#include <cfenv>
#include <cmath>
#include <memory>
#include <string>

#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "ash";

enum class Variant { P, B, S };

bool logit_only(const ood::DetectorNeeds& n) {
  return !n.features && !n.linear_head && !n.feature_map && !n.input_gradients && !n.stochastic_passes && !n.fit &&
         !n.fit_labels && n.layers.empty();
}

// numpy.round (half to even) of a non-negative double.
std::int64_t round_half_even(double x) {
  const double r = std::nearbyint(x);  // default rounding mode: to nearest, ties to even
  if (std::fegetround() == FE_TONEAREST) return static_cast<std::int64_t>(r);
  const double f = std::floor(x), diff = x - f;
  if (diff > 0.5) return static_cast<std::int64_t>(f) + 1;
  if (diff < 0.5) return static_cast<std::int64_t>(f);
  return static_cast<std::int64_t>(std::fmod(f, 2.0) == 0.0 ? f : f + 1);
}

class Ash final : public ood::Detector {
 public:
  Ash(Variant variant, double percentile, std::string percentile_pointer, std::shared_ptr<ood::Detector> inner)
      : variant_(variant),
        percentile_(percentile),
        percentile_pointer_(std::move(percentile_pointer)),
        inner_(std::move(inner)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.feature_map = true;
    return n;
  }

  void attach(ood::Model& model) override {
    if (!model.has_feature_map())
      throw ood::InvalidArgument("ash needs the feature map before global pooling, which the model lacks");
    model_ = &model;
    inner_->attach(model);
  }

  /// The shaped feature map (a new tensor; the views' map is left as it is).
  at::Tensor shape(const at::Tensor& map) const {
    ood::require_floating(map, kName, "feature map", 4, "[N, C, H, W]");
    const std::int64_t b = map.size(0);
    const std::int64_t n = map.size(1) * map.size(2) * map.size(3);
    const std::int64_t k = n - round_half_even(static_cast<double>(n) * percentile_);
    if (k < 1 || n == 0)
      throw ood::InvalidArgument(percentile_pointer_ + ": percentile " + std::to_string(percentile_) +
                                 " keeps no entry of a feature map of " + std::to_string(n) +
                                 " entries per sample (k = n - round(n * percentile) must be >= 1)");
    const at::Tensor t = map.detach().reshape({b, n});
    auto [values, index] = at::topk(t, k, 1);
    at::Tensor out = at::zeros_like(t);
    switch (variant_) {
      case Variant::P:
        out.scatter_(1, index, values);
        break;
      case Variant::B: {
        const at::Tensor fill = (t.sum(1, true) / static_cast<double>(k)).expand({b, k});
        out.scatter_(1, index, fill);
        break;
      }
      case Variant::S: {
        const at::Tensor s1 = t.sum(1);
        out.scatter_(1, index, values);
        const at::Tensor s2 = out.sum(1);
        // Where nothing positive is kept (s2 == 0: every kept entry is 0) the map stays as
        // it is (scale exp(0)), instead of pytorch-ood's 0 * exp(s1 / 0) = NaN.
        const at::Tensor scale = at::where(s2 == 0, at::zeros_like(s1), s1 / s2);
        out = out * at::exp(scale).unsqueeze(1);
        break;
      }
    }
    return out.view(map.sizes());
  }

  at::Tensor score(ood::Views& views) override {
    ood::Model* model = views.has_model() ? &views.model() : model_;
    if (model == nullptr)
      throw ood::StateError(std::string(kName) +
                            ": needs the model's path from the feature map to the logits (attach it to a model)");
    const at::Tensor shaped = shape(views.feature_map());
    const at::Tensor logits = model->logits_from_feature_map(shaped);
    if (!at::isfinite(logits).all().item<bool>())
      throw ood::Error(std::string(kName) + ": the logits of the shaped feature map are not finite" +
                       (variant_ == Variant::S ? " (ash-s scales by exp(s1 / s2), which overflows float32 for a "
                                                 "percentile close to 1; lower it)"
                                               : ""));
    ood::Views fresh;
    fresh.set_logits(logits);
    return inner_->score(fresh);
  }

 private:
  Variant variant_;
  double percentile_;
  std::string percentile_pointer_;
  std::shared_ptr<ood::Detector> inner_;
  ood::Model* model_ = nullptr;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "prune and reshape the feature map before pooling, then score the logits with a detector";
  info.paper =
      "Djurisic, Bozanic, Ashok & Liu, Extremely Simple Activation Shaping for Out-of-Distribution Detection, ICLR";
  info.year = 2023;
  info.doc =
      "Per sample, over the n = C*H*W entries of the feature map before global pooling, the top\n"
      "k = n - round_half_even(n * percentile) entries are kept (numpy.round):\n"
      "  ash-p: the rest set to 0;  ash-b: the kept entries set to s1 / k (s1: sum of all entries),\n"
      "  the rest 0;  ash-s: the rest 0, then everything times exp(s1 / s2) (s2: sum of the kept).\n"
      "logits = head(pool(shaped map)) (or the model's own path from the map); score = detector(logits), larger for outliers; `detector` is\n"
      "any logit-only detector (default energy-based, t = 1). Needs a model with a feature map.\n"
      "Matches pytorch_ood.detector.ASH (parity), except: the views' feature map is not modified in\n"
      "place (pytorch-ood's ash-p/ash-b overwrite the backbone output); ash-s leaves a map whose kept\n"
      "entries sum to 0 unscaled (pytorch-ood: NaN); a percentile that keeps no entry, or logits that\n"
      "overflow (ash-s with a percentile close to 1), are errors instead of NaN/inf scores.";
  info.params = {
      ood::ParamSpec::choice("variant", {"ash-p", "ash-b", "ash-s"}, "how the kept activations are shaped")
          .default_value("ash-s"),
      ood::ParamSpec::real("percentile", "fraction (0..1) of the feature-map entries to prune")
          .default_value(0.65)
          .min(0.0)
          .max(1.0, true),
      ood::ParamSpec::component("detector", ood::Kind::Detector, "logit-only detector scoring the shaped logits")
          .default_json(R"({"plugin": "energy-based"})"),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context& ctx) {
    const ood::ComponentSpec spec = params.get_component("detector");
    std::shared_ptr<ood::Detector> inner = ctx.make_detector(spec);
    if (!logit_only(inner->needs()))
      throw ood::InvalidArgument(params.pointer("detector") + ": ash needs a detector of the logits alone (no fit, " +
                                 "features or model access); '" + spec.plugin + "' needs more");
    const std::string v = params.get_string("variant");
    const Variant variant = v == "ash-p" ? Variant::P : v == "ash-b" ? Variant::B : Variant::S;
    return std::make_shared<Ash>(variant, params.get_float("percentile"), params.pointer("percentile"),
                                 std::move(inner));
  });
}

}  // namespace

OOD_PLUGIN("ash", "ASH detector (activation shaping)", register_components)
