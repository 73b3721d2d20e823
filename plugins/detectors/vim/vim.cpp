// ViM: virtual-logit matching (Wang, Li, Feng & Zhang, "ViM: Out-Of-Distribution with
// Virtual-logit Matching", CVPR 2022), as pytorch-ood's ViM.
//
//   u     = -pinv(W) b                              (new origin; W, b: the linear head)
//   C     = sum_i (z_i - u)(z_i - u)^T / N          (fit features, OOD-labelled ones ignored)
//   NS    = eigenvectors of C except those of the d largest eigenvalues   [D, D - d]
//   alpha = mean_i max_c logits_i / mean_i ||(z_i - u) NS||
//   score = alpha ||(z - u) NS|| - logsumexp(clip(logits, -100, 100))
//
// Fitting accumulates float64 moments (ClassMoments) and the sum of the max logits;
// alpha needs the residual norm of every fit sample under the final NS, so the fit
// features are kept (float32) until finish_fit and released afterwards.
#include <ATen/ATen.h>

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

constexpr const char* kName = "vim";

class Vim final : public ood::Detector {
 public:
  Vim(std::int64_t d, std::string d_pointer) : d_(d), d_pointer_(std::move(d_pointer)), moments_(true) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.logits = true;
    n.linear_head = true;
    n.fit = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const std::optional<ood::LinearHead> head = model.linear_head();
    if (!head)
      throw ood::InvalidArgument("vim needs the model's linear last layer (weight and bias), which it lacks");
    check_head(*head);
    feature_dim_ = head->weight.size(1);
    check_dim(feature_dim_);
    model_ = &model;
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    head_ = current_head(views);
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "fitting features", 2, "[N, D]");
    check_dim(features.size(1));
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "fitting logits", 2, "[N, C]");
    if (labels.dim() != 1 || labels.size(0) != features.size(0) || logits.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": fitting labels must be [" + std::to_string(features.size(0)) +
                            "], got " + ood::describe_tensor(labels));
    const at::Tensor keep = labels.to(at::kCPU) >= 0;
    // One class for the moments: IN samples get 0, OOD ones stay negative (skipped).
    moments_.add(features, labels.to(at::kCPU, at::kLong).clamp_max(0));
    const at::Tensor z = features.detach().to(at::kCPU, at::kFloat).index({keep});
    if (z.size(0) == 0) return;
    max_logit_sum_ += std::get<0>(logits.detach().to(at::kCPU, at::kDouble).index({keep}).max(1)).sum().item<double>();
    kept_.push_back(z.contiguous());
  }

  void finish_fit() override {
    if (moments_.total() == 0)
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    const std::int64_t dim = moments_.dim();
    check_dim(dim);
    if (head_.weight.size(1) != dim)
      throw ood::ShapeError(std::string(kName) + ": fitting features have " + std::to_string(dim) +
                            " dimensions, the linear head expects " + std::to_string(head_.weight.size(1)));
    // New origin u = -pinv(W) b, from the head as it is when fitting (float64).
    const at::Tensor u64 = -at::mv(at::linalg_pinv(head_.weight.to(at::kCPU, at::kDouble)),
                                   head_.bias.to(at::kCPU, at::kDouble));
    const double n = static_cast<double>(moments_.total());
    // sum (z - u)(z - u)^T = scatter about the mean + N (mean - u)(mean - u)^T
    const at::Tensor mu = moments_.mean() - u64;
    const at::Tensor cov = (moments_.total_scatter() + n * at::outer(mu, mu)) / n;
    auto [evals, evecs] = at::linalg_eigh(0.5 * (cov + cov.t()));  // ascending
    // Residual space: all but the d largest eigenvalues (the first D - d in ascending order).
    const at::Tensor ns = evecs.slice(1, 0, dim - d_).contiguous();
    // alpha from the kept features, in chunks.
    const at::Tensor all = at::cat(kept_);
    kept_.clear();
    double norm_sum = 0;
    for (std::int64_t s = 0; s < all.size(0); s += 4096) {
      const at::Tensor c = all.slice(0, s, std::min(all.size(0), s + 4096)).to(at::kDouble) - u64;
      norm_sum += at::mm(c, ns).norm(2, 1).sum().item<double>();
    }
    if (!(norm_sum > 0))
      throw ood::StateError(std::string(kName) +
                            ": the fitting features have no component outside the principal subspace (d = " +
                            std::to_string(d_) + "): alpha is undefined");
    alpha_ = at::scalar_tensor((max_logit_sum_ / n) / (norm_sum / n), at::kDouble);
    eigenvalues_ = evals.flip(0).contiguous();
    residual_ = ns;
    residual32_ = ns.to(at::kFloat);
    u_ = u64;
    u32_ = u_.to(at::kFloat);
    moments_ = ood::ClassMoments(true);
    max_logit_sum_ = 0;
  }

  bool is_fitted() const override { return residual_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!residual_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted: give it \"fit\" (fitting data) or \"load_state\"");
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    if (features.size(1) != u_.size(0))
      throw ood::ShapeError(std::string(kName) + ": features have " + std::to_string(features.size(1)) +
                            " dimensions, the fitted state " + std::to_string(u_.size(0)));
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    if (logits.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": logits " + ood::describe_tensor(logits) + " and features " +
                            ood::describe_tensor(features) + " differ in batch size");
    const at::Tensor z = features.detach().to(at::kFloat);
    const at::Tensor r = at::mm(z - u32_.to(z.device()), residual32_.to(z.device())).norm(2, 1);
    const at::Tensor energy = at::logsumexp(logits.detach().to(at::kFloat).clamp(-100, 100), 1);
    return (static_cast<float>(alpha_.item<double>()) * r - energy).to(features.scalar_type());
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!residual_.defined()) return out;
    out.set("u", u_);
    out.set("residual_basis", residual_);
    out.set("alpha", alpha_);
    out.set("eigenvalues", eigenvalues_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    const std::vector<std::string> expected = {"u", "residual_basis", "alpha", "eigenvalues"};
    for (const auto& key : saved.keys())
      if (std::find(expected.begin(), expected.end(), key) == expected.end())
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key +
                              "' (expected u, residual_basis, alpha, eigenvalues)");
    for (const auto& key : expected)
      if (!saved.contains(key)) throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "'");
    const at::Tensor u = saved.at("u"), ns = saved.at("residual_basis"), alpha = saved.at("alpha"),
                     ev = saved.at("eigenvalues");
    auto floating = [](const at::Tensor& t) { return at::isFloatingType(t.scalar_type()); };
    if (u.dim() != 1 || !floating(u) || u.size(0) < 2)
      throw ood::StateError(std::string(kName) + ": state 'u' must be floating [D], got " + ood::describe_tensor(u));
    const std::int64_t dim = u.size(0);
    if (feature_dim_ > 0 && dim != feature_dim_)
      throw ood::StateError(std::string(kName) + ": the state is for features of size " + std::to_string(dim) +
                            ", the model's are " + std::to_string(feature_dim_));
    if (ns.dim() != 2 || !floating(ns) || ns.size(0) != dim || ns.size(1) != dim - d_)
      throw ood::StateError(std::string(kName) + ": state 'residual_basis' must be floating [" +
                            std::to_string(dim) + ", " + std::to_string(dim - d_) + "] (D - d, d = " +
                            std::to_string(d_) + "), got " + ood::describe_tensor(ns));
    if (alpha.dim() != 0 || !floating(alpha))
      throw ood::StateError(std::string(kName) + ": state 'alpha' must be a floating scalar, got " +
                            ood::describe_tensor(alpha));
    if (ev.dim() != 1 || !floating(ev) || ev.size(0) != dim)
      throw ood::StateError(std::string(kName) + ": state 'eigenvalues' must be floating [" + std::to_string(dim) +
                            "], got " + ood::describe_tensor(ev));
    u_ = u.to(at::kCPU, at::kDouble).clone();
    u32_ = u_.to(at::kFloat);
    residual_ = ns.to(at::kCPU, at::kDouble).contiguous().clone();
    residual32_ = residual_.to(at::kFloat);
    alpha_ = alpha.to(at::kCPU, at::kDouble).clone();
    eigenvalues_ = ev.to(at::kCPU, at::kDouble).clone();
  }

 private:
  static void check_head(const ood::LinearHead& head) {
    if (!head.weight.defined() || head.weight.dim() != 2 || !head.bias.defined() || head.bias.dim() != 1 ||
        head.bias.size(0) != head.weight.size(0))
      throw ood::InvalidArgument("vim needs a linear head with weight [C, D] and bias [C], got weight " +
                                 ood::describe_tensor(head.weight) + " and bias " + ood::describe_tensor(head.bias));
  }

  // The linear head: of the views' model, else of the attached model.
  ood::LinearHead current_head(ood::Views& views) const {
    ood::Model* model = views.has_model() ? &views.model() : model_;
    if (model == nullptr)
      throw ood::StateError(std::string(kName) +
                            ": fitting needs the model's linear head (the detector was not attached to a model)");
    const std::optional<ood::LinearHead> head = model->linear_head();
    if (!head) throw ood::StateError(std::string(kName) + ": the model has no linear last layer");
    check_head(*head);
    return ood::LinearHead{head->weight.detach(), head->bias.detach()};
  }

  void check_dim(std::int64_t dim) const {
    if (d_ >= dim)
      throw ood::InvalidArgument(d_pointer_ + ": d = " + std::to_string(d_) +
                                 " must be smaller than the feature size " + std::to_string(dim) +
                                 " (d is the dimension of the principal subspace)");
  }

  std::int64_t d_;
  std::string d_pointer_;
  std::int64_t feature_dim_ = 0;
  ood::Model* model_ = nullptr;  // the attached model
  ood::LinearHead head_;         // the head seen while fitting
  // fitting
  ood::ClassMoments moments_;
  double max_logit_sum_ = 0;
  std::vector<at::Tensor> kept_;
  // fitted state (float64) and float32 copies for scoring
  at::Tensor u_, u32_, residual_, residual32_, alpha_, eigenvalues_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "virtual logit from the residual of the principal subspace, minus the energy";
  info.paper = "Wang, Li, Feng & Zhang, ViM: Out-Of-Distribution with Virtual-logit Matching, CVPR";
  info.year = 2022;
  info.doc =
      "u = -pinv(W) b (W, b: the model's linear last layer); C = sum_i (z_i - u)(z_i - u)^T / N over\n"
      "the IN fitting features; NS = eigenvectors of C except those of the d largest eigenvalues;\n"
      "alpha = mean_i max_c logits_i / mean_i ||(z_i - u) NS||;\n"
      "score = alpha ||(z - u) NS|| - logsumexp(clip(logits, -100, 100)), larger for outliers.\n"
      "Matches pytorch_ood.detector.ViM (parity); ood computes the covariance, its eigen-\n"
      "decomposition (symmetric, eigh) and alpha in float64 where pytorch-ood uses numpy float32\n"
      "(the residual space is the same up to rotation: compare projectors NS NS^T).\n"
      "Fitting streams float64 moments; alpha needs each fit sample's residual norm under the\n"
      "final NS, so the fit features are kept (float32) until the end of fitting, then released.\n"
      "The state holds u, NS [D, D - d], alpha and the eigenvalues. d must be smaller than the\n"
      "feature size (pytorch-ood silently uses D // 2 when D < d; ood refuses).";
  info.params = {
      ood::ParamSpec::integer("d", "dimension of the principal subspace (smaller than the feature size)").min(1),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Vim>(params.get_int("d"), params.pointer("d"));
  });
}

}  // namespace

OOD_PLUGIN("vim", "Virtual-logit matching detector", register_components)
