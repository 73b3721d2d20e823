// Multi-layer Mahalanobis (Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting
// Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018), as pytorch-ood
// 0.2's MultiMahalanobis:
//
//   z_l      = output of layer l averaged over its spatial dimensions (H, W)
//   mu_lk    = mean of z_l over the IN fit samples of class k
//   Sigma_l  = sum_k sum_{i in k} (z_li - mu_lk)(z_li - mu_lk)^T / (N - 1) + 1e-6 I,  P_l = Sigma_l^-1
//   score(x) = sum_l alpha_l * 0.5 * min_k (z_l - mu_lk)^T P_l (z_l - mu_lk)
//
// pytorch-ood has no input perturbation here; with eps > 0 each layer gets its own
// perturbed input as in the authors' code (Lee et al.): x_hat_l = x - eps * sign(grad_x
// 0.5 d_lk*(x)) / norm_std[channel], k* the closest class of layer l, and layer l is
// scored on x_hat_l.
//
// Fitting streams over batches (one ood::ClassMoments per layer, float64).
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
#include "ood/params.hpp"
#include "ood/plugin.hpp"
#include "ood/stats.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "multi-mahalanobis";

std::string str(std::int64_t v) { return std::to_string(v); }

// [N, C, *spatial] -> [N, C] (mean over the spatial dimensions); [N, D] stays as it is.
at::Tensor spatial_mean(const at::Tensor& t, const std::string& layer) {
  if (t.dim() < 2 || !at::isFloatingType(t.scalar_type()))
    throw ood::ShapeError(std::string(kName) + ": layer '" + layer + "' gave " + ood::describe_tensor(t) +
                          " (expected a floating [N, C, H, W] or [N, D] tensor)");
  return t.dim() == 2 ? t : t.flatten(2).mean(2);
}

struct LayerGaussian {
  at::Tensor mu, cov, precision, factor;  // float64, CPU
};

class MultiMahalanobis final : public ood::Detector {
 public:
  MultiMahalanobis(std::vector<std::string> layers, std::vector<double> alpha, ood::InputPerturbation perturbation,
                   std::string layers_pointer)
      : layers_(std::move(layers)),
        alpha_(std::move(alpha)),
        perturbation_(std::move(perturbation)),
        layers_pointer_(std::move(layers_pointer)) {
    moments_.assign(layers_.size(), ood::ClassMoments(true));
  }

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.layers = layers_;
    n.input_gradients = perturbation_.enabled();
    n.fit = true;
    n.fit_labels = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const std::vector<std::string> known = model.layer_names();
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (std::find(known.begin(), known.end(), layers_[i]) == known.end())
        throw ood::InvalidArgument(layers_pointer_ + "/" + std::to_string(i) + ": the model has no layer '" +
                                   layers_[i] + "'" +
                                   (known.empty() ? " (it exposes no intermediate layers)" : " (its layers: " + list + ")"));
    perturbation_.check_model(model.info());
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    views.prefetch_layers(layers_);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const at::Tensor z = spatial_mean(views.layer(layers_[l]), layers_[l]);
      try {
        moments_[l].add(z, labels);
      } catch (const ood::ShapeError& e) {
        throw ood::ShapeError(std::string(kName) + ": layer '" + layers_[l] + "': " + e.what());
      }
    }
  }

  void finish_fit() override {
    std::vector<LayerGaussian> fitted;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const ood::ClassMoments& m = moments_[l];
      LayerGaussian g;
      g.mu = ood::fitted_class_means(m, kName);
      g.cov = ood::regularised_covariance(m.within_class_scatter(), m.total(), kName);
      g.precision = ood::precision_of(g.cov, kName);
      fitted.push_back(g);
    }
    set_state(std::move(fitted));
    moments_.assign(layers_.size(), ood::ClassMoments(true));
  }

  bool is_fitted() const override { return !gaussians_.empty(); }

  at::Tensor score(ood::Views& views) override {
    if (gaussians_.empty())
      throw ood::StateError(std::string(kName) + ": not fitted (give it \"fit\" or \"load_state\")");
    at::Tensor total;
    if (!perturbation_.enabled()) {
      views.prefetch_layers(layers_);
      for (std::size_t l = 0; l < layers_.size(); ++l) {
        const at::Tensor s = alpha_[l] * layer_score(l, views.layer(layers_[l]));
        total = total.defined() ? total + s : s;
      }
      return total;
    }
    if (!views.has_model())
      throw ood::StateError(std::string(kName) + ": eps > 0 needs the model for input gradients, and there is none");
    ood::Model& model = views.model();
    const at::Tensor& inputs = views.inputs();
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const LayerGaussian& g = gaussians_[l];
      const at::Tensor x_hat = perturbation_.apply(
          inputs,
          [&](const at::Tensor& x) {
            const at::Tensor z = spatial_mean(model.intermediate(x, {layers_[l]}).at(layers_[l]), layers_[l]);
            return ood::nearest_class_half_distance(checked(l, z).to(at::kDouble), g.mu, g.factor);
          },
          kName);
      at::NoGradGuard no_grad;
      const at::Tensor s = alpha_[l] * layer_score(l, model.intermediate(x_hat, {layers_[l]}).at(layers_[l]));
      total = total.defined() ? total + s : s;
    }
    return total;
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    for (std::size_t l = 0; l < gaussians_.size(); ++l) {
      out.set("mu_" + std::to_string(l), gaussians_[l].mu);
      out.set("cov_" + std::to_string(l), gaussians_[l].cov);
      out.set("precision_" + std::to_string(l), gaussians_[l].precision);
    }
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    const std::string expected = "mu_l, cov_l, precision_l for l = 0.." + std::to_string(layers_.size() - 1);
    for (const auto& key : saved.keys()) {
      bool known = false;
      for (std::size_t l = 0; l < layers_.size() && !known; ++l)
        for (const char* p : {"mu_", "cov_", "precision_"})
          if (key == p + std::to_string(l)) known = true;
      if (!known)
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key + "' (expected " + expected + ")");
    }
    std::vector<LayerGaussian> loaded;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::string sfx = std::to_string(l);
      for (const char* p : {"mu_", "cov_", "precision_"})
        if (!saved.contains(p + sfx))
          throw ood::StateError(std::string(kName) + ": the state lacks '" + p + sfx + "' (expected " + expected + ")");
      const at::Tensor& mu = saved.at("mu_" + sfx);
      if (mu.dim() != 2 || mu.size(0) < 1 || mu.size(1) < 1 || !at::isFloatingType(mu.scalar_type()))
        throw ood::StateError(std::string(kName) + ": state 'mu_" + sfx + "' must be a floating [K, D] tensor, got " +
                              ood::describe_tensor(mu));
      if (l > 0 && mu.size(0) != loaded[0].mu.size(0))
        throw ood::StateError(std::string(kName) + ": state 'mu_" + sfx + "' has " + str(mu.size(0)) +
                              " classes, 'mu_0' has " + str(loaded[0].mu.size(0)));
      const std::int64_t d = mu.size(1);
      for (const char* p : {"cov_", "precision_"}) {
        const at::Tensor& t = saved.at(p + sfx);
        if (t.dim() != 2 || t.size(0) != d || t.size(1) != d || !at::isFloatingType(t.scalar_type()))
          throw ood::StateError(std::string(kName) + ": state '" + p + sfx + "' must be a floating [" + str(d) + ", " +
                                str(d) + "] tensor (D from 'mu_" + sfx + "'), got " + ood::describe_tensor(t));
      }
      LayerGaussian g;
      g.mu = mu.to(at::kDouble);
      g.cov = saved.at("cov_" + sfx).to(at::kDouble);
      g.precision = saved.at("precision_" + sfx).to(at::kDouble);
      loaded.push_back(g);
    }
    set_state(std::move(loaded));
  }

 private:
  void set_state(std::vector<LayerGaussian> gs) {
    for (std::size_t l = 0; l < gs.size(); ++l) {
      LayerGaussian& g = gs[l];
      g.mu = g.mu.cpu().contiguous();
      g.cov = g.cov.cpu().contiguous();
      g.precision = g.precision.cpu().contiguous();
      if (!at::isfinite(g.mu).all().item<bool>() || !at::isfinite(g.cov).all().item<bool>() ||
          !at::isfinite(g.precision).all().item<bool>())
        throw ood::StateError(std::string(kName) + ": the state of layer " + std::to_string(l) +
                              " holds NaN or infinite values");
      g.factor = ood::cholesky_factor(g.precision, kName, "precision matrix of layer " + std::to_string(l));
    }
    gaussians_ = std::move(gs);
  }

  at::Tensor checked(std::size_t l, const at::Tensor& z) const {
    const std::int64_t d = gaussians_[l].mu.size(1);
    if (z.size(1) != d)
      throw ood::ShapeError(std::string(kName) + ": layer '" + layers_[l] + "' has " + str(z.size(1)) +
                            " channels, the detector was fitted on " + str(d));
    return z;
  }

  // 0.5 * min_k d_lk of one layer's output, float64 [N].
  at::Tensor layer_score(std::size_t l, const at::Tensor& output) const {
    const at::Tensor z = checked(l, spatial_mean(output, layers_[l])).detach();
    const LayerGaussian& g = gaussians_[l];
    return (0.5 * std::get<0>(ood::mahalanobis_distances(z.cpu(), g.mu, g.factor).min(1))).to(z.device());
  }

  std::vector<std::string> layers_;
  std::vector<double> alpha_;
  ood::InputPerturbation perturbation_;
  std::string layers_pointer_;
  std::vector<ood::ClassMoments> moments_;
  std::vector<LayerGaussian> gaussians_;  // empty until fitted
};

void check_params(const ood::Params& params) {
  const std::vector<std::string> layers = params.get_string_list("layers");
  for (std::size_t i = 0; i < layers.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (layers[i] == layers[j])
        throw ood::InvalidArgument(params.pointer("layers") + "/" + std::to_string(i) + ": layer '" + layers[i] +
                                   "' is listed twice (also at index " + std::to_string(j) + ")");
  if (params.has("alpha")) {
    const std::size_t n = params.get_float_list("alpha").size();
    if (n != layers.size())
      throw ood::InvalidArgument(params.pointer("alpha") + ": " + std::to_string(n) + " weights for " +
                                 std::to_string(layers.size()) + " layers (one weight per layer)");
  }
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "weighted sum of Mahalanobis distances on several layers' spatially averaged outputs";
  info.paper =
      "Lee, Lee, Lee & Shin, A Simple Unified Framework for Detecting Out-of-Distribution Samples and "
      "Adversarial Attacks, NeurIPS";
  info.year = 2018;
  info.doc =
      "score = sum_l alpha_l * 0.5 * min_k (z_l - mu_lk)^T P_l (z_l - mu_lk), larger for outliers;\n"
      "z_l = output of layer l averaged over H and W, mu_lk = class means, P_l = inv(shared within-class\n"
      "scatter / (N - 1) + 1e-6 I) per layer (OOD-labelled fit samples are ignored). The layers are the\n"
      "model's module names (wide-resnet: conv1, block1, block2, block3, before_pool); all of them come\n"
      "from the one shared partial forward per batch.\n"
      "eps > 0 (ood's addition, pytorch-ood has none): each layer is scored on its own perturbed input\n"
      "x_hat_l = x - eps * sign(grad_x 0.5 d_lk*) / norm_std[channel] as in Lee et al.'s code (one\n"
      "backward and one partial forward per layer).\n"
      "Fitting streams over batches with float64 sums and scatter per layer (nothing kept per sample).\n"
      "Parity with pytorch_ood.detector.MultiMahalanobis 0.2. State: mu_l, cov_l, precision_l (float64).";
  info.params = {
      ood::ParamSpec::list("layers", ood::ParamType::String, "the model's layers (module names), in any order")
          .items(1),
      ood::ParamSpec::list("alpha", ood::ParamType::Float, "weight of each layer (default 1 for every layer)")
          .optional()
          .items(1),
      ood::ParamSpec::real("eps", "input perturbation size (0: no perturbation, as pytorch-ood)")
          .default_value(0.0)
          .min(0.0),
      ood::InputPerturbation::norm_std_param("the perturbation step"),
  };
  info.check = check_params;
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    check_params(params);
    const std::vector<std::string> layers = params.get_string_list("layers");
    std::vector<double> alpha(layers.size(), 1.0);
    if (params.has("alpha")) alpha = params.get_float_list("alpha");
    return std::make_shared<MultiMahalanobis>(layers, alpha, ood::InputPerturbation::from_params(params),
                                              params.pointer("layers"));
  });
}

}  // namespace

OOD_PLUGIN("multi-mahalanobis", "Multi-layer Mahalanobis detector", register_components)
