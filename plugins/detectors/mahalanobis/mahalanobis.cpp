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
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/stats.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "mahalanobis";

std::string str(std::int64_t v) { return std::to_string(v); }

// ---- class-conditional Gaussians with a shared covariance (float64) ----

// The lower Cholesky factor of a symmetric positive definite matrix; StateError otherwise.
at::Tensor cholesky_or_throw(const at::Tensor& m, const std::string& what) {
  auto [factor, info] = at::linalg_cholesky_ex(m);
  if (info.item<std::int64_t>() != 0 || !at::isfinite(factor).all().item<bool>())
    throw ood::StateError(std::string(kName) + ": the " + what +
                          " is not positive definite (too few fit samples for the feature size, or "
                          "features too large for the 1e-6 regularisation)");
  return factor;
}

// Sigma / (N - 1) + 1e-6 I from a scatter matrix, symmetrised.
at::Tensor regularised_covariance(const at::Tensor& scatter, std::int64_t n) {
  if (n < 2)
    throw ood::StateError(std::string(kName) + ": fitting needs at least 2 in-distribution samples, got " + str(n));
  const at::Tensor cov = scatter / static_cast<double>(n - 1);
  return 0.5 * (cov + cov.t()) + 1e-6 * at::eye(cov.size(0), cov.options());
}

at::Tensor precision_of(const at::Tensor& cov) {
  const at::Tensor p = at::cholesky_inverse(cholesky_or_throw(cov, "covariance"));
  return 0.5 * (p + p.t());
}

// d[n, k] = (z_n - mu_k)^T P (z_n - mu_k) = ||z_n L - mu_k L||^2 with P = L L^T, float64.
// Chunked over classes so that the temporary [N, chunk, D] stays at about 4M doubles (32 MB).
at::Tensor squared_distances(const at::Tensor& z, const at::Tensor& mu, const at::Tensor& factor) {
  const at::Tensor f = factor.to(z.device());
  const at::Tensor zl = at::mm(z.to(at::kDouble), f);
  const at::Tensor ml = at::mm(mu.to(z.device()), f);
  const std::int64_t n = zl.size(0), k = ml.size(0), d = ml.size(1);
  const std::int64_t chunk = std::max<std::int64_t>(1, (std::int64_t{1} << 22) / std::max<std::int64_t>(1, n * d));
  std::vector<at::Tensor> parts;
  for (std::int64_t k0 = 0; k0 < k; k0 += chunk) {
    const at::Tensor diff = zl.unsqueeze(1) - ml.slice(0, k0, std::min(k, k0 + chunk)).unsqueeze(0);
    parts.push_back(diff.pow(2).sum(2));
  }
  return at::cat(parts, 1);
}

// x - eps * sign(grad) / norm_std[channel] (pytorch-ood's odin-style step), detached.
at::Tensor step_against(const at::Tensor& x, const at::Tensor& grad, double eps, const std::vector<double>& norm_std) {
  at::Tensor step = grad.sign();
  if (!norm_std.empty()) {
    std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
    shape[1] = static_cast<std::int64_t>(norm_std.size());
    step = step / at::tensor(norm_std, at::kDouble).to(x.device(), x.scalar_type()).view(shape);
  }
  return (x.detach() - eps * step).detach();
}

class Mahalanobis final : public ood::Detector {
 public:
  Mahalanobis(double eps, std::vector<double> norm_std, std::string norm_std_pointer)
      : eps_(eps), norm_std_(std::move(norm_std)), norm_std_pointer_(std::move(norm_std_pointer)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.input_gradients = eps_ > 0;
    n.fit = true;
    n.fit_labels = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const ood::ModelInfo info = model.info();
    feature_dim_ = info.feature_dim > 0 ? std::optional<std::int64_t>(info.feature_dim) : std::nullopt;
    if (!norm_std_.empty() && !info.input_shape.empty() && info.input_shape[0] > 0 &&
        info.input_shape[0] != static_cast<std::int64_t>(norm_std_.size()))
      throw ood::InvalidArgument(norm_std_pointer_ + ": " + str(static_cast<std::int64_t>(norm_std_.size())) +
                                 " values for a model with " + str(info.input_shape[0]) + " input channels");
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
    if (moments_.total() == 0)
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    at::Tensor mu;
    try {
      mu = moments_.class_means();
    } catch (const ood::StateError& e) {
      throw ood::StateError(std::string(kName) + ": " + e.what());
    }
    const at::Tensor cov = regularised_covariance(moments_.within_class_scatter(), moments_.total());
    set_state(mu, cov, precision_of(cov));
    moments_ = ood::ClassMoments(true);
  }

  bool is_fitted() const override { return mu_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!mu_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted (give it \"fit\" or \"load_state\")");
    if (eps_ <= 0) return min_half_distance(checked(views.features()));
    if (!views.has_model())
      throw ood::StateError(std::string(kName) + ": eps > 0 needs the model for input gradients, and there is none");
    ood::Model& model = views.model();
    const at::Tensor& inputs = views.inputs();
    if (!norm_std_.empty() && (inputs.dim() < 2 || inputs.size(1) != static_cast<std::int64_t>(norm_std_.size())))
      throw ood::ShapeError(std::string(kName) + ": norm_std has " + str(static_cast<std::int64_t>(norm_std_.size())) +
                            " values, the inputs are " + ood::describe_tensor(inputs));
    at::Tensor x_hat;
    {
      at::AutoGradMode enable(true);
      const at::Tensor x = inputs.detach().clone().requires_grad_(true);
      const at::Tensor z = checked(model.features(x)).to(at::kDouble);
      const at::Tensor nearest = squared_distances(z.detach(), mu_, factor_).argmin(1);
      // 0.5 * (z - mu_k*)^T P (z - mu_k*) per sample, summed (pytorch-ood: mean; same sign).
      const at::Tensor centred = at::mm(z - mu_.to(z.device()).index_select(0, nearest), factor_.to(z.device()));
      const at::Tensor loss = 0.5 * centred.pow(2).sum();
      const at::Tensor grad = torch::autograd::grad({loss}, {x})[0];
      x_hat = step_against(x, grad, eps_, norm_std_);
    }
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
    const at::Tensor factor = cholesky_or_throw(precision.cpu().contiguous(), "precision matrix");
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
    const at::Tensor d = squared_distances(z.detach().cpu(), mu_, factor_);
    return (0.5 * std::get<0>(d.min(1))).to(z.device());
  }

  double eps_;
  std::vector<double> norm_std_;
  std::string norm_std_pointer_;
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
      ood::ParamSpec::list("norm_std", ood::ParamType::Float,
                           "per-channel standard deviations of the input normalisation; the perturbation "
                           "step of each channel is divided by its value")
          .optional()
          .items(1)
          .min(0.0, true),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    std::vector<double> norm_std;
    if (params.has("norm_std")) norm_std = params.get_float_list("norm_std");
    return std::make_shared<Mahalanobis>(params.get_float("eps"), norm_std, params.pointer("norm_std"));
  });
}

}  // namespace

OOD_PLUGIN("mahalanobis", "Mahalanobis distance detector", register_components)
