// ReAct: rectified activations (Sun, Guo & Li, "ReAct: Out-of-distribution Detection With
// Rectified Activations", NeurIPS 2021), as pytorch-ood's ReAct.
//
//   logits'  = W min(z, threshold) + b          (W, b: the model's linear last layer)
//   score(x) = detector(logits')                (any logit-only detector; energy by default)
//
// The threshold is given, or (`percentile`) the NumPy percentile of every entry of the
// IN fitting features, as the paper's 90th percentile; then the detector fits, keeping
// the fit features (float32) until the end of fitting.
#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "react";

// numpy.percentile(values, q) (linear interpolation) over every element, with
// kthvalue on the values' own dtype (no float64 copy of the whole set).
double numpy_percentile(const at::Tensor& values, double q) {
  const at::Tensor flat = values.reshape({-1});
  const std::int64_t n = flat.numel();
  const double pos = static_cast<double>(n - 1) * q / 100.0;
  const auto lo = static_cast<std::int64_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(lo);
  const double a = std::get<0>(at::kthvalue(flat, lo + 1)).item<double>();
  if (frac == 0.0 || lo + 1 >= n) return a;
  const double b = std::get<0>(at::kthvalue(flat, lo + 2)).item<double>();
  return frac >= 0.5 ? b - (b - a) * (1.0 - frac) : a + (b - a) * frac;
}

bool logit_only(const ood::DetectorNeeds& n) {
  return !n.features && !n.linear_head && !n.feature_map && !n.input_gradients && !n.stochastic_passes && !n.fit &&
         !n.fit_labels && n.layers.empty();
}

class React final : public ood::Detector {
 public:
  React(std::optional<double> threshold, std::optional<double> percentile, std::shared_ptr<ood::Detector> inner)
      : percentile_(percentile), inner_(std::move(inner)) {
    if (threshold) threshold_ = at::scalar_tensor(*threshold, at::kDouble);
  }

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.linear_head = true;
    n.fit = percentile_.has_value();
    return n;
  }

  void attach(ood::Model& model) override {
    const std::optional<ood::LinearHead> head = model.linear_head();
    if (!head) throw ood::InvalidArgument("react needs the model's linear last layer (weight and bias), which it lacks");
    model_ = &model;
    inner_->attach(model);
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    if (!percentile_)
      throw ood::StateError(std::string(kName) + ": fits only with \"percentile\" (a fixed threshold needs no fit)");
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "fitting features", 2, "[N, D]");
    if (labels.dim() != 1 || labels.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": fitting labels must be [" + std::to_string(features.size(0)) +
                            "], got " + ood::describe_tensor(labels));
    const at::Tensor z = features.detach().to(at::kCPU, at::kFloat).index({labels.to(at::kCPU) >= 0});
    if (z.size(0) == 0) return;
    if (!at::isfinite(z).all().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": the fitting features contain NaN or infinite values");
    kept_.push_back(z.contiguous());
  }

  void finish_fit() override {
    if (!percentile_) return;
    if (kept_.empty())
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    const at::Tensor all = at::cat(kept_);
    kept_.clear();
    threshold_ = at::scalar_tensor(numpy_percentile(all, *percentile_), at::kDouble);
  }

  bool is_fitted() const override { return threshold_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!threshold_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted: with \"percentile\" it needs \"fit\" (fitting data) "
                                                 "or \"load_state\"");
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    ood::Model* model = views.has_model() ? &views.model() : model_;
    if (model == nullptr)
      throw ood::StateError(std::string(kName) + ": needs the model's linear head (attach it to a model)");
    const std::optional<ood::LinearHead> head = model->linear_head();
    if (!head) throw ood::StateError(std::string(kName) + ": the model has no linear last layer");
    const at::Tensor w = head->weight.detach(), b = head->bias.detach();
    if (features.size(1) != w.size(1))
      throw ood::ShapeError(std::string(kName) + ": features have " + std::to_string(features.size(1)) +
                            " dimensions, the linear head expects " + std::to_string(w.size(1)));
    const at::Tensor clipped = features.detach().clamp_max(threshold_.item<double>());
    ood::Views shaped;
    shaped.set_logits(at::linear(clipped, w.to(clipped.device(), clipped.scalar_type()),
                                 b.to(clipped.device(), clipped.scalar_type())));
    return inner_->score(shaped);
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (percentile_ && threshold_.defined()) out.set("threshold", threshold_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    if (!percentile_) {
      if (!saved.empty())
        throw ood::StateError(std::string(kName) + ": with a fixed threshold the state is empty, got '" +
                              saved.keys().front() + "'");
      return;
    }
    for (const auto& key : saved.keys())
      if (key != "threshold")
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key + "' (expected only 'threshold')");
    if (!saved.contains("threshold")) throw ood::StateError(std::string(kName) + ": the state lacks 'threshold'");
    const at::Tensor& t = saved.at("threshold");
    if (t.dim() != 0 || !at::isFloatingType(t.scalar_type()) || !std::isfinite(t.item<double>()))
      throw ood::StateError(std::string(kName) + ": state 'threshold' must be a finite floating scalar, got " +
                            ood::describe_tensor(t));
    threshold_ = t.to(at::kCPU, at::kDouble).clone();
  }

 private:
  std::optional<double> percentile_;
  std::shared_ptr<ood::Detector> inner_;
  at::Tensor threshold_;  // float64 scalar; given, or fitted from the percentile
  ood::Model* model_ = nullptr;  // the attached model
  std::vector<at::Tensor> kept_;  // fitting (percentile): the IN fit features, float32
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "clip the penultimate features at a threshold, then score the head's logits with a detector";
  info.paper = "Sun, Guo & Li, ReAct: Out-of-distribution Detection With Rectified Activations, NeurIPS";
  info.year = 2021;
  info.doc =
      "logits' = W min(z, threshold) + b (W, b: the model's linear last layer, z: penultimate\n"
      "features; only an upper clip); score = detector(logits'), larger for outliers. `detector` is\n"
      "any logit-only detector (default energy-based, t = 1).\n"
      "threshold: given (default 1.0, pytorch-ood's default), or with `percentile` the NumPy\n"
      "percentile (linear, in percent; the paper uses 90) of every entry of the IN fitting features:\n"
      "then the detector needs \"fit\" or \"load_state\", keeps the fit features (float32) until the\n"
      "end of fitting, and its state is the threshold. threshold and percentile exclude each other.\n"
      "Matches pytorch_ood.detector.ReAct (parity).";
  info.params = {
      ood::ParamSpec::real("threshold", "upper clip of the penultimate features (default 1.0 without percentile)")
          .optional(),
      ood::ParamSpec::real("percentile", "fit the threshold as this percentile (0..100) of the fitting features")
          .optional()
          .min(0.0)
          .max(100.0),
      ood::ParamSpec::component("detector", ood::Kind::Detector, "logit-only detector scoring the clipped logits")
          .default_json(R"({"plugin": "energy-based"})"),
  };
  info.check = [](const ood::Params& params) {
    if (params.has("threshold") && params.has("percentile"))
      throw ood::InvalidArgument(params.pointer("percentile") +
                                 ": give either threshold or percentile, not both (percentile fits the threshold)");
  };
  registrar.add_detector(info, [check = info.check](const ood::Params& params, ood::Context& ctx) {
    check(params);
    const ood::ComponentSpec spec = params.get_component("detector");
    std::shared_ptr<ood::Detector> inner = ctx.make_detector(spec);
    if (!logit_only(inner->needs()))
      throw ood::InvalidArgument(params.pointer("detector") + ": react needs a detector of the logits alone (no fit, " +
                                 "features or model access); '" + spec.plugin + "' needs more");
    std::optional<double> threshold, percentile;
    if (params.has("percentile"))
      percentile = params.get_float("percentile");
    else
      threshold = params.has("threshold") ? params.get_float("threshold") : 1.0;
    return std::make_shared<React>(threshold, percentile, std::move(inner));
  });
}

}  // namespace

OOD_PLUGIN("react", "ReAct detector (clipped activations)", register_components)
