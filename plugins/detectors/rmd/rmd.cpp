// RMD, the relative Mahalanobis distance (Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan,
// "A Simple Fix to Mahalanobis Distance for Improving Near-OOD Detection", 2021), as the
// paper defines it:
//
//   d_k(z) = (z - mu_k)^T P (z - mu_k),  P   = inv(Sigma),   Sigma   = within-class scatter / (N - 1) + 1e-6 I
//   d_0(z) = (z - mu_0)^T P_0 (z - mu_0), P_0 = inv(Sigma_0), Sigma_0 = total scatter / (N - 1) + 1e-6 I
//   score(x) = min_k (d_k(z) - d_0(z))           (z = features(x); full squared distances)
//
// Deviations from pytorch-ood 0.2 (POLICY.md): its background covariance is the scatter
// matrix itself (not divided by N - 1, unlike the class covariance), and its predict()
// always perturbs the input with eps = 0.002. Here Sigma_0 is normalised like Sigma and
// the input is perturbed only when eps > 0 is given, with pytorch-ood's (Mahalanobis')
// step: x_hat = x - eps * sign(grad_x 0.5 d_k*(x)) / norm_std[channel], k* = argmin_k d_k.
//
// Fitting streams over batches (ood::ClassMoments, float64): memory O(K D + D^2).
#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/input_perturbation.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/stats.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "rmd";

std::string str(std::int64_t v) { return std::to_string(v); }

const std::vector<std::string> kStateKeys = {"mu", "cov", "precision", "background_mu", "background_cov",
                                             "background_precision"};

class Rmd final : public ood::Detector {
 public:
  explicit Rmd(ood::InputPerturbation perturbation) : perturbation_(std::move(perturbation)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.input_gradients = perturbation_.enabled();
    n.fit = true;
    n.fit_labels = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const ood::ModelInfo info = model.info();
    feature_dim_ = info.feature_dim > 0 ? std::optional<std::int64_t>(info.feature_dim) : std::nullopt;
    perturbation_.check_model(info);
    if (!state_.empty() && feature_dim_ && state_.at("mu").size(1) != *feature_dim_)
      throw ood::StateError(std::string(kName) + ": the fitted state has features of size " + str(state_.at("mu").size(1)) +
                            ", the model's features have size " + str(*feature_dim_));
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const at::Tensor& z = views.features();
    ood::require_floating(z, kName, "features", 2, "[N, D]");
    if (feature_dim_ && z.size(1) != *feature_dim_)
      throw ood::ShapeError(std::string(kName) + ": features of size " + str(z.size(1)) + ", the model has " +
                            str(*feature_dim_));
    moments_.add(z, labels);
  }

  void finish_fit() override {
    const at::Tensor mu = ood::fitted_class_means(moments_, kName);
    const at::Tensor cov = ood::regularised_covariance(moments_.within_class_scatter(), moments_.total(), kName);
    const at::Tensor bg_cov = ood::regularised_covariance(moments_.total_scatter(), moments_.total(), kName);
    ood::TensorDict s;
    s.set("mu", mu);
    s.set("cov", cov);
    s.set("precision", ood::precision_of(cov, kName));
    s.set("background_mu", moments_.mean());
    s.set("background_cov", bg_cov);
    s.set("background_precision", ood::precision_of(bg_cov, kName));
    set_state(s);
    moments_ = ood::ClassMoments(true);
  }

  bool is_fitted() const override { return !state_.empty(); }

  at::Tensor score(ood::Views& views) override {
    if (state_.empty())
      throw ood::StateError(std::string(kName) + ": not fitted (give it \"fit\" or \"load_state\")");
    if (!perturbation_.enabled()) return relative_distance(checked(views.features()));
    if (!views.has_model())
      throw ood::StateError(std::string(kName) + ": eps > 0 needs the model for input gradients, and there is none");
    ood::Model& model = views.model();
    const at::Tensor x_hat = perturbation_.apply(
        views.inputs(),
        [&](const at::Tensor& x) {
          return ood::nearest_class_half_distance(checked(model.features(x)).to(at::kDouble), state_.at("mu"),
                                                  factor_);
        },
        kName);
    at::NoGradGuard no_grad;
    return relative_distance(checked(model.features(x_hat)));
  }

  ood::TensorDict state() const override { return state_; }

  void load_state(const ood::TensorDict& saved) override {
    std::string expected;
    for (const auto& k : kStateKeys) expected += (expected.empty() ? "" : ", ") + k;
    for (const auto& key : saved.keys())
      if (std::find(kStateKeys.begin(), kStateKeys.end(), key) == kStateKeys.end())
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key + "' (expected " + expected + ")");
    for (const auto& key : kStateKeys)
      if (!saved.contains(key))
        throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "' (expected " + expected + ")");
    const at::Tensor& mu = saved.at("mu");
    if (mu.dim() != 2 || mu.size(0) < 1 || mu.size(1) < 1 || !at::isFloatingType(mu.scalar_type()))
      throw ood::StateError(std::string(kName) + ": state 'mu' must be a floating [K, D] tensor, got " +
                            ood::describe_tensor(mu));
    const std::int64_t d = mu.size(1);
    const at::Tensor& bg_mu = saved.at("background_mu");
    if (bg_mu.dim() != 1 || bg_mu.size(0) != d || !at::isFloatingType(bg_mu.scalar_type()))
      throw ood::StateError(std::string(kName) + ": state 'background_mu' must be a floating [" + str(d) +
                            "] tensor (D from 'mu'), got " + ood::describe_tensor(bg_mu));
    for (const char* name : {"cov", "precision", "background_cov", "background_precision"}) {
      const at::Tensor& t = saved.at(name);
      if (t.dim() != 2 || t.size(0) != d || t.size(1) != d || !at::isFloatingType(t.scalar_type()))
        throw ood::StateError(std::string(kName) + ": state '" + name + "' must be a floating [" + str(d) + ", " +
                              str(d) + "] tensor (D from 'mu'), got " + ood::describe_tensor(t));
    }
    if (feature_dim_ && d != *feature_dim_)
      throw ood::StateError(std::string(kName) + ": the state was fitted on features of size " + str(d) +
                            ", the model's features have size " + str(*feature_dim_));
    ood::TensorDict s;
    for (const auto& key : kStateKeys) s.set(key, saved.at(key).to(at::kDouble));
    set_state(s);
  }

 private:
  void set_state(const ood::TensorDict& s) {
    ood::TensorDict out;
    for (const auto& key : kStateKeys) {
      const at::Tensor t = s.at(key).cpu().contiguous();
      if (!at::isfinite(t).all().item<bool>())
        throw ood::StateError(std::string(kName) + ": state '" + key + "' holds NaN or infinite values");
      out.set(key, t);
    }
    const at::Tensor factor = ood::cholesky_factor(out.at("precision"), kName, "precision matrix");
    const at::Tensor bg_factor =
        ood::cholesky_factor(out.at("background_precision"), kName, "background precision matrix");
    state_ = out;
    factor_ = factor;
    bg_factor_ = bg_factor;
  }

  at::Tensor checked(const at::Tensor& z) const {
    ood::require_floating(z, kName, "features", 2, "[N, D]");
    const std::int64_t d = state_.at("mu").size(1);
    if (z.size(1) != d)
      throw ood::ShapeError(std::string(kName) + ": features of size " + str(z.size(1)) +
                            ", the detector was fitted on size " + str(d));
    return z;
  }

  at::Tensor relative_distance(const at::Tensor& z) const {
    const at::Tensor zc = z.detach().cpu();
    const at::Tensor d = ood::mahalanobis_distances(zc, state_.at("mu"), factor_);
    const at::Tensor d0 = ood::mahalanobis_distances(zc, state_.at("background_mu").unsqueeze(0), bg_factor_);
    return std::get<0>((d - d0).min(1)).to(z.device());
  }

  ood::InputPerturbation perturbation_;
  std::optional<std::int64_t> feature_dim_;
  ood::ClassMoments moments_{true};
  ood::TensorDict state_;          // float64, CPU; empty until fitted
  at::Tensor factor_, bg_factor_;  // Cholesky factors of the two precision matrices
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "relative Mahalanobis distance: closest class distance minus the background distance";
  info.paper =
      "Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan, A Simple Fix to Mahalanobis Distance for Improving "
      "Near-OOD Detection, ICML UDL workshop (arXiv:2106.09022)";
  info.year = 2021;
  info.doc =
      "score = min_k [d_k(z) - d_0(z)], larger for outliers; z = penultimate features,\n"
      "d_k = (z - mu_k)^T P (z - mu_k), P = inv(within-class scatter / (N - 1) + 1e-6 I) (as mahalanobis),\n"
      "d_0 = (z - mu_0)^T P_0 (z - mu_0), mu_0 = mean of all IN fit features,\n"
      "P_0 = inv(total scatter / (N - 1) + 1e-6 I) (OOD-labelled fit samples are ignored).\n"
      "eps > 0: the input is first perturbed as by mahalanobis (x_hat = x - eps * sign(grad_x 0.5 d_k*) /\n"
      "norm_std[channel], k* the closest class), then scored; eps = 0 (default): no perturbation.\n"
      "Fitting streams over batches with float64 sums and scatter (nothing kept per sample).\n"
      "Follows the paper, not pytorch_ood.detector.RMD 0.2: pytorch-ood leaves the background\n"
      "covariance unnormalised (the scatter itself, while the class covariance is divided by N - 1)\n"
      "and always perturbs inputs with eps = 0.002 in predict(); with the same normalisation and\n"
      "perturbation the scores are pytorch-ood's. State: mu, cov, precision, background_mu,\n"
      "background_cov, background_precision (float64).";
  info.params = {
      ood::ParamSpec::real("eps", "input perturbation size (0: no perturbation)").default_value(0.0).min(0.0),
      ood::InputPerturbation::norm_std_param("the perturbation step"),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Rmd>(ood::InputPerturbation::from_params(params));
  });
}

}  // namespace

OOD_PLUGIN("rmd", "Relative Mahalanobis distance detector", register_components)
