// OpenMax: recalibrates the top-alpha logits by a Weibull model of the distance to the
// class centres and returns the probability of the "unknown" class.
//
// Bendale & Boult, "Towards Open Set Deep Networks", CVPR 2016; pytorch-ood's OpenMax
// (numpy implementation with the LibNotMR Weibull fit).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "openmax";
// libMR's translation: the tail is shifted so that its smallest value is 10000.
constexpr double kTranslation = 10000.0;
constexpr double kMaxShape = 1e15;

struct Weibull {
  double shape;  // c
  double scale;  // lambda
};

/// Maximum-likelihood Weibull fit (location 0) of positive values x: the shape c solves
///   g(c) = sum x^c ln x / sum x^c - 1/c - mean ln x = 0
/// (increasing in c: unique root), then scale = (mean x^c)^(1/c). Computed with
/// r_i = ln(x_i / max x) <= 0 so that nothing overflows. Bisection in log c with Newton
/// steps, float64.
Weibull fit_weibull(const std::vector<double>& x) {
  const double xmax = *std::max_element(x.begin(), x.end());
  std::vector<double> r(x.size());
  double mean_r = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    r[i] = std::log(x[i] / xmax);
    mean_r += r[i];
  }
  mean_r /= static_cast<double>(x.size());
  // g(c) and g'(c): A = weighted mean of r with weights exp(c r), A' = weighted variance.
  auto eval = [&](double c, double* deriv) {
    double sw = 0, swr = 0, swrr = 0;
    for (double ri : r) {
      const double w = std::exp(c * ri);
      sw += w;
      swr += w * ri;
      swrr += w * ri * ri;
    }
    const double a = swr / sw;
    if (deriv) *deriv = swrr / sw - a * a + 1 / (c * c);
    return a - 1 / c - mean_r;
  };
  double lo = 1e-6, hi = 1.0;
  while (eval(hi, nullptr) < 0 && hi < kMaxShape) hi *= 4;
  double c;
  if (eval(hi, nullptr) < 0) {
    c = kMaxShape;  // (nearly) identical values: no finite maximum
    ood::log::warn(std::string(kName) + ": Weibull tail without spread; its shape is capped at 1e15");
  } else {
    c = std::sqrt(lo * hi);
    for (int it = 0; it < 300; ++it) {
      double d = 0;
      const double g = eval(c, &d);
      if (g == 0) break;
      if (g < 0) lo = c; else hi = c;
      double next = (d > 0 && std::isfinite(d)) ? c - g / d : std::nan("");
      if (!(next > lo && next < hi)) next = std::sqrt(lo * hi);
      const double step = std::fabs(next - c);
      c = next;
      if (step <= 1e-15 * c || hi / lo - 1 <= 1e-15) break;
    }
  }
  double mean_w = 0;
  for (double ri : r) mean_w += std::exp(c * ri);
  mean_w /= static_cast<double>(r.size());
  return {c, xmax * std::exp(std::log(mean_w) / c)};
}

/// Distances [N, K] of rows of `l` [N, C] to the centres `centers` [K, C]:
/// euclid_weight * ||l - m|| + (1 - euclid_weight) * (1 - cos(l, m)); the cosine
/// distance of a zero vector is taken as 1 (never NaN).
at::Tensor distances(const at::Tensor& l, const at::Tensor& centers, double euclid_weight) {
  at::Tensor d = at::zeros({l.size(0), centers.size(0)}, l.options());
  if (euclid_weight != 0) d = d + euclid_weight * (l.unsqueeze(1) - centers.unsqueeze(0)).norm(2, {2});
  if (euclid_weight != 1) {
    const at::Tensor dot = at::matmul(l, centers.t());
    const at::Tensor norms = l.norm(2, {1}).unsqueeze(1) * centers.norm(2, {1}).unsqueeze(0);
    const at::Tensor cos_dist = at::where(norms > 0, 1 - dot / norms, at::ones_like(dot));
    d = d + (1 - euclid_weight) * cos_dist;
  }
  return d;
}

class OpenMax final : public ood::Detector {
 public:
  OpenMax(std::int64_t tailsize, std::int64_t alpha, double euclid_weight)
      : tailsize_(tailsize), alpha_(alpha), euclid_weight_(euclid_weight) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.logits = true;
    n.fit = true;
    n.fit_labels = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const std::int64_t c = model.info().num_classes;
    if (c > 0) model_classes_ = c;
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "fit logits", 2, "[N, C]");
    if (labels.dim() != 1 || labels.size(0) != logits.size(0) || at::isFloatingType(labels.scalar_type()))
      throw ood::ShapeError(std::string(kName) + ": labels must be an integer vector [N] matching the logits " +
                            ood::describe_tensor(logits) + ", got " + ood::describe_tensor(labels));
    if (!fit_logits_.empty() && fit_logits_.front().size(1) != logits.size(1))
      throw ood::ShapeError(std::string(kName) + ": fit logits have " + std::to_string(logits.size(1)) +
                            " classes, earlier batches " + std::to_string(fit_logits_.front().size(1)));
    const at::Tensor y = labels.to(at::kCPU, at::kLong);
    if ((y >= logits.size(1)).any().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": fit label " + std::to_string(y.max().item<std::int64_t>()) +
                            " >= the number of classes " + std::to_string(logits.size(1)));
    const at::Tensor known = y >= 0;  // OOD samples are ignored
    fit_logits_.push_back(logits.to(at::kCPU, at::kDouble).index({known}));
    fit_labels_.push_back(y.index({known}));
  }

  void finish_fit() override {
    if (fit_logits_.empty()) throw ood::StateError(std::string(kName) + ": no fit batch was seen");
    const at::Tensor l = at::cat(fit_logits_);
    const at::Tensor y = at::cat(fit_labels_);
    const std::int64_t c = l.size(1);
    if (!at::isfinite(l).all().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": the fit logits have non-finite values");
    const at::Tensor counts = at::bincount(y, {}, c);
    std::string missing;
    for (std::int64_t k = 0; k < c; ++k)
      if (counts[k].item<std::int64_t>() == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    if (!missing.empty())
      throw ood::StateError(std::string(kName) + ": no fit sample with label " + missing +
                            ": every class needs samples for its centre and Weibull model");
    at::Tensor centers = at::zeros({c, c}, at::kDouble);
    centers.index_add_(0, y, l);
    centers = centers / counts.to(at::kDouble).unsqueeze(1);
    at::Tensor shape = at::empty({c}, at::kDouble), scale = at::empty({c}, at::kDouble),
               min_val = at::empty({c}, at::kDouble);
    for (std::int64_t k = 0; k < c; ++k) {
      const at::Tensor lk = l.index({y == k});
      const at::Tensor d = std::get<0>(distances(lk, centers[k].unsqueeze(0), euclid_weight_).view({-1}).sort());
      const std::int64_t n = d.size(0);
      const std::int64_t take = std::min(n, tailsize_);
      const at::Tensor tail = d.slice(0, n - take, n).contiguous();
      const double tail_min = tail[0].item<double>();
      std::vector<double> x(static_cast<std::size_t>(take));
      const double* td = tail.data_ptr<double>();
      for (std::int64_t i = 0; i < take; ++i) x[static_cast<std::size_t>(i)] = td[i] + kTranslation - tail_min;
      const Weibull w = fit_weibull(x);
      shape[k] = w.shape;
      scale[k] = w.scale;
      min_val[k] = tail_min;
    }
    fit_logits_.clear();
    fit_labels_.clear();
    set_state(centers, shape, scale, min_val);
  }

  bool is_fitted() const override { return fitted_; }

  /// Probabilities [N, C + 1] of the revised activations, column 0 = unknown (float64).
  at::Tensor revised_probabilities(const at::Tensor& logits_in) const {
    const at::Tensor l = logits_in.to(at::kCPU, at::kDouble);
    const std::int64_t n = l.size(0), c = l.size(1);
    const std::int64_t alpha = std::min(alpha_, c);
    // Ranks: the alpha largest logits (descending) get weights (alpha + 1 - i) / alpha.
    const at::Tensor top = std::get<1>(l.topk(alpha, 1, /*largest=*/true, /*sorted=*/true));  // [N, alpha]
    const at::Tensor rank_w =
        (alpha - at::arange(alpha, at::kDouble)).div(static_cast<double>(alpha)).unsqueeze(0).expand({n, alpha});
    // Each sample's distance to the centre of each of ITS top-alpha classes.
    const at::Tensor centres = centers_.index_select(0, top.reshape({-1})).view({n, alpha, c});
    at::Tensor dist = at::zeros({n, alpha}, at::kDouble);
    if (euclid_weight_ != 0) dist = dist + euclid_weight_ * (l.unsqueeze(1) - centres).norm(2, {2});
    if (euclid_weight_ != 1) {
      const at::Tensor dot = (l.unsqueeze(1) * centres).sum(2);
      const at::Tensor norms = l.norm(2, {1}).unsqueeze(1) * centres.norm(2, {2});
      dist = dist + (1 - euclid_weight_) * at::where(norms > 0, 1 - dot / norms, at::ones_like(dot));
    }
    // Weibull cdf (location 0) of the translated distance.
    const at::Tensor x = (dist + kTranslation - min_val_.index_select(0, top.reshape({-1})).view({n, alpha}))
                             .clamp_min(0);
    const at::Tensor k = shape_.index_select(0, top.reshape({-1})).view({n, alpha});
    const at::Tensor lam = scale_.index_select(0, top.reshape({-1})).view({n, alpha});
    const at::Tensor cdf = -at::expm1(-at::exp(k * at::log(x / lam)));
    at::Tensor wscores = at::ones({n, c}, at::kDouble);
    wscores.scatter_(1, top, 1 - cdf * rank_w);
    const at::Tensor revised = l * wscores;
    const at::Tensor unknown = (l * (1 - wscores)).sum(1, true);
    return at::softmax(at::cat({unknown, revised}, 1), 1);
  }

  at::Tensor score(ood::Views& views) override {
    if (!fitted_)
      throw ood::StateError(std::string(kName) + ": not fitted: fit it on labelled data or load a state");
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    if (logits.size(1) != centers_.size(0))
      throw ood::ShapeError(std::string(kName) + ": logits have " + std::to_string(logits.size(1)) +
                            " classes, the fitted model " + std::to_string(centers_.size(0)));
    return revised_probabilities(logits).select(1, 0).to(logits.device(), logits.scalar_type());
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (!fitted_) return s;
    s.set("centers", centers_);
    s.set("weibull_shape", shape_);
    s.set("weibull_scale", scale_);
    s.set("weibull_min_val", min_val_);
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    const std::string who = std::string(kName) + ": state: ";
    const std::vector<std::string> keys = {"centers", "weibull_shape", "weibull_scale", "weibull_min_val"};
    for (const auto& key : state.keys())
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        throw ood::StateError(who + "unknown entry '" + key + "'");
    for (const auto& key : keys)
      if (!state.contains(key)) throw ood::StateError(who + "missing entry '" + key + "'");
    const at::Tensor m = state.at("centers");
    if (m.scalar_type() != at::kDouble || m.dim() != 2 || m.size(0) != m.size(1) || m.size(0) < 1)
      throw ood::StateError(who + "'centers' must be float64 [C, C], got " + ood::describe_tensor(m));
    const std::int64_t c = m.size(0);
    if (model_classes_ > 0 && c != model_classes_)
      throw ood::StateError(who + "fitted for " + std::to_string(c) + " classes, the model has " +
                            std::to_string(model_classes_));
    for (const char* key : {"weibull_shape", "weibull_scale", "weibull_min_val"}) {
      const at::Tensor t = state.at(key);
      if (t.scalar_type() != at::kDouble || t.dim() != 1 || t.size(0) != c)
        throw ood::StateError(who + "'" + key + "' must be float64 [" + std::to_string(c) + "], got " +
                              ood::describe_tensor(t));
      if (!at::isfinite(t).all().item<bool>()) throw ood::StateError(who + "'" + key + "' has non-finite values");
    }
    if (!((state.at("weibull_shape") > 0).all().item<bool>() && (state.at("weibull_scale") > 0).all().item<bool>()))
      throw ood::StateError(who + "Weibull shapes and scales must be > 0");
    if (!at::isfinite(m).all().item<bool>()) throw ood::StateError(who + "'centers' has non-finite values");
    set_state(m.to(at::kCPU).clone(), state.at("weibull_shape").to(at::kCPU).clone(),
              state.at("weibull_scale").to(at::kCPU).clone(), state.at("weibull_min_val").to(at::kCPU).clone());
  }

 private:
  void set_state(at::Tensor centers, at::Tensor shape, at::Tensor scale, at::Tensor min_val) {
    centers_ = std::move(centers);
    shape_ = std::move(shape);
    scale_ = std::move(scale);
    min_val_ = std::move(min_val);
    fitted_ = true;
  }

  std::int64_t tailsize_;
  std::int64_t alpha_;
  double euclid_weight_;
  std::int64_t model_classes_ = 0;
  std::vector<at::Tensor> fit_logits_;
  std::vector<at::Tensor> fit_labels_;
  at::Tensor centers_, shape_, scale_, min_val_;
  bool fitted_ = false;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "OpenMax: probability of the unknown class after Weibull recalibration of the top logits";
  info.paper = "Bendale & Boult, Towards Open Set Deep Networks, CVPR";
  info.year = 2016;
  info.doc =
      "Fit (labelled fit samples; label < 0 ignored): centre m_k = mean logits of the fit samples labelled "
      "k (all of them, not only the correctly classified); distance d(l, m) = euclid_weight ||l - m|| + "
      "(1 - euclid_weight) (1 - cos(l, m)); per class, a Weibull (location 0) is fitted to the `tailsize` "
      "largest distances translated by 10000 - min(tail) (libMR's convention), by exact maximum "
      "likelihood: the shape solves the profile-likelihood equation (float64 Newton/bisection), "
      "scale = (mean x^c)^(1/c).\n"
      "Score: for each sample, its alpha' = min(alpha, C) largest logits, ranks i = 1..alpha', get "
      "w_i = 1 - (alpha' + 1 - i)/alpha' * WeibullCDF_k(d(l, m_k) + 10000 - min_k); revised = l * w (others "
      "unchanged), unknown = sum l (1 - w); score = softmax([unknown, revised])_0, larger for outliers.\n"
      "Fitting keeps the fit logits (float64, N x C) until finish_fit, because the distances need the "
      "centres first; the state is the centres and 3 Weibull numbers per class.\n"
      "Deviations from pytorch-ood (per POLICY.md): each sample's distances to its own top-alpha classes' "
      "centres, so scores do not depend on the other samples in the batch (pytorch-ood computes distances "
      "only for classes that are the argmax of some sample in the batch, others count as distance 0); "
      "Weibull parameters by exact MLE (pytorch-ood: scipy's Nelder-Mead, ~1e-6 relative from it); a "
      "max-shifted softmax instead of clipping the revised activations at 709; the cosine distance of a "
      "zero vector is 1 (pytorch-ood: NaN). A class without fit samples is an error at fit.";
  info.params = {
      ood::ParamSpec::integer("tailsize", "number of largest distances per class the Weibull model is fitted to")
          .default_value(25)
          .min(1),
      ood::ParamSpec::integer("alpha", "number of top logits that are revised (capped at the number of classes)")
          .default_value(10)
          .min(1),
      ood::ParamSpec::real("euclid_weight", "weight of the Euclidean distance; 1 - it weights the cosine distance")
          .default_value(1.0)
          .min(0.0)
          .max(1.0),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) -> std::shared_ptr<ood::Detector> {
    return std::make_shared<OpenMax>(params.get_int("tailsize"), params.get_int("alpha"),
                                     params.get_float("euclid_weight"));
  });
}

}  // namespace

OOD_PLUGIN("openmax", "OpenMax OOD detector", register_components)
