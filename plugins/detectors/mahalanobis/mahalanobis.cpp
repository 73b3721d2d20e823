// Mahalanobis (Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting
// Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018), as pytorch-ood 0.2's
// Mahalanobis:
//
//   mu_k = mean of the penultimate features of class k (IN fit samples only)
//   Sigma = sum_k sum_{i in k} (z_i - mu_k)(z_i - mu_k)^T / (N - 1) + 1e-6 I,  P = Sigma^-1
//   score(x) = 0.5 * min_k (z - mu_k)^T P (z - mu_k)             (z = features(x))
//
// With eps > 0 the input is first moved against the gradient of the same term for the
// closest class k*:  x_hat = x - eps * sign(grad_x 0.5 d_k*(z(x))) / norm_std[channel],
// and the score is that of x_hat.
//
// Fitting streams over batches (ood::ClassMoments, float64): memory O(K D + D^2).
// Scoring runs in float64 through the Cholesky factor L of P (d = ||(z - mu_k) L||^2).
#include <ATen/ATen.h>

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

constexpr const char* kName = "mahalanobis";

std::string str(std::int64_t v) { return std::to_string(v); }

class Mahalanobis final : public ood::Detector {
 public:
  explicit Mahalanobis(ood::InputPerturbation perturbation) : perturbation_(std::move(perturbation)) {}

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
    if (mu_.defined()) check_dim(mu_.size(1));
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
    set_state(mu, cov, ood::precision_of(cov, kName));
    moments_ = ood::ClassMoments(true);
  }

  bool is_fitted() const override { return mu_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!mu_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted (give it \"fit\" or \"load_state\")");
    if (!perturbation_.enabled()) return min_half_distance(checked(views.features()));
    if (!views.has_model())
      throw ood::StateError(std::string(kName) + ": eps > 0 needs the model for input gradients, and there is none");
    ood::Model& model = views.model();
    // 0.5 * (z - mu_k*)^T P (z - mu_k*) per sample, summed (pytorch-ood: mean; same sign).
    const at::Tensor x_hat = perturbation_.apply(
        views.inputs(),
        [&](const at::Tensor& x) {
          return ood::nearest_class_half_distance(checked(model.features(x)).to(at::kDouble), mu_, factor_);
        },
        kName);
    at::NoGradGuard no_grad;
    return min_half_distance(checked(model.features(x_hat)));
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!mu_.defined()) return out;
    out.set("mu", mu_);
    out.set("cov", cov_);
    out.set("precision", precision_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    for (const auto& key : saved.keys())
      if (key != "mu" && key != "cov" && key != "precision")
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key + "' (expected mu, cov, precision)");
    for (const char* key : {"mu", "cov", "precision"})
      if (!saved.contains(key))
        throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "' (expected mu, cov, precision)");
    const at::Tensor& mu = saved.at("mu");
    const at::Tensor& cov = saved.at("cov");
    const at::Tensor& precision = saved.at("precision");
    if (mu.dim() != 2 || mu.size(0) < 1 || mu.size(1) < 1 || !at::isFloatingType(mu.scalar_type()))
      throw ood::StateError(std::string(kName) + ": state 'mu' must be a floating [K, D] tensor, got " +
                            ood::describe_tensor(mu));
    const std::int64_t d = mu.size(1);
    for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"cov", &cov}, {"precision", &precision}})
      if (t->dim() != 2 || t->size(0) != d || t->size(1) != d || !at::isFloatingType(t->scalar_type()))
        throw ood::StateError(std::string(kName) + ": state '" + name + "' must be a floating [" + str(d) + ", " +
                              str(d) + "] tensor (D from 'mu'), got " + ood::describe_tensor(*t));
    if (feature_dim_ && d != *feature_dim_)
      throw ood::StateError(std::string(kName) + ": the state was fitted on features of size " + str(d) +
                            ", the model's features have size " + str(*feature_dim_));
    set_state(mu.to(at::kDouble), cov.to(at::kDouble), precision.to(at::kDouble));
  }

 private:
  void check_dim(std::int64_t d) const {
    if (feature_dim_ && d != *feature_dim_)
      throw ood::StateError(std::string(kName) + ": the fitted state has features of size " + str(d) +
                            ", the model's features have size " + str(*feature_dim_));
  }

  void set_state(at::Tensor mu, at::Tensor cov, at::Tensor precision) {
    const at::Tensor factor = ood::cholesky_factor(precision.cpu().contiguous(), kName, "precision matrix");
    if (!at::isfinite(mu).all().item<bool>() || !at::isfinite(cov).all().item<bool>())
      throw ood::StateError(std::string(kName) + ": the state holds NaN or infinite values");
    mu_ = mu.cpu().contiguous();
    cov_ = cov.cpu().contiguous();
    precision_ = precision.cpu().contiguous();
    factor_ = factor;
  }

  at::Tensor checked(const at::Tensor& z) const {
    ood::require_floating(z, kName, "features", 2, "[N, D]");
    if (z.size(1) != mu_.size(1))
      throw ood::ShapeError(std::string(kName) + ": features of size " + str(z.size(1)) +
                            ", the detector was fitted on size " + str(mu_.size(1)));
    return z;
  }

  at::Tensor min_half_distance(const at::Tensor& z) const {
    const at::Tensor d = ood::mahalanobis_distances(z.detach().cpu(), mu_, factor_);
    return (0.5 * std::get<0>(d.min(1))).to(z.device());
  }

  ood::InputPerturbation perturbation_;
  std::optional<std::int64_t> feature_dim_;
  ood::ClassMoments moments_{true};
  at::Tensor mu_, cov_, precision_, factor_;  // float64, CPU
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "Mahalanobis distance of the penultimate features to the closest class mean";
  info.paper =
      "Lee, Lee, Lee & Shin, A Simple Unified Framework for Detecting Out-of-Distribution Samples and "
      "Adversarial Attacks, NeurIPS";
  info.year = 2018;
  info.doc =
      "score = 0.5 * min_k (z - mu_k)^T P (z - mu_k), larger for outliers; z = penultimate features,\n"
      "mu_k = class means, P = inv(Sigma), Sigma = sum_k sum_{i in k} (z_i - mu_k)(z_i - mu_k)^T / (N - 1)\n"
      "+ 1e-6 I (shared within-class covariance of the IN fit samples; OOD-labelled ones are ignored).\n"
      "eps > 0: x_hat = x - eps * sign(grad_x 0.5 d_k*(x)) / norm_std[channel], k* the closest class on x,\n"
      "then the score of x_hat (own forward and backward pass; only input gradients are computed).\n"
      "Fitting streams over batches with float64 sums and scatter (nothing kept per sample); scoring in\n"
      "float64. Parity with pytorch_ood.detector.Mahalanobis 0.2 (incl. its factor 0.5 and the /(N-1)).\n"
      "State: mu [K, D], cov [D, D], precision [D, D] (float64).";
  info.params = {
      ood::ParamSpec::real("eps", "input perturbation size (0: no perturbation)").default_value(0.002).min(0.0),
      ood::InputPerturbation::norm_std_param("the perturbation step"),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Mahalanobis>(ood::InputPerturbation::from_params(params));
  });
}

}  // namespace

OOD_PLUGIN("mahalanobis", "Mahalanobis distance detector", register_components)
