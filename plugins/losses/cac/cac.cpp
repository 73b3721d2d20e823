// Class Anchor Clustering (CAC) loss and its rejection score, as pytorch-ood's CACLoss,
// with the "other classes" of the tuplet term as the paper defines them (every class
// but the target; pytorch-ood uses columns 0..C-2 for every row).
//
//   d_ik = ||z_i - a_k||^2, anchors a_k = magnitude * e_k (fixed), z = the embedding
//   loss = alpha * mean_IN d_{i,y_i} + mean_IN log(1 + sum_{j != y_i} exp(min(d_{i,y_i} - d_ij, 50)))
//   score = -max_k d_k * (1 - softmin(d)_k)                 (CACLoss.score)
//
// Miller, Sunderhauf, Milford & Dayoub, "Class Anchor Clustering: a Loss for Distance-based
// Open Set Recognition", WACV 2021.
#include <ATen/ATen.h>

#include <optional>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"

namespace {

constexpr const char* kName = "cac";
constexpr const char* kAnchors = "_centers._params";  // pytorch-ood's state_dict key

class Cac final : public ood::Loss {
 public:
  Cac(std::optional<std::int64_t> n_classes, double magnitude, double alpha, ood::EmbeddingSource source,
      std::string n_pointer, std::string emb_pointer)
      : n_classes_(n_classes),
        magnitude_(magnitude),
        alpha_(alpha),
        source_(source),
        n_pointer_(std::move(n_pointer)),
        emb_pointer_(std::move(emb_pointer)) {
    if (n_classes_) make_anchors(*n_classes_);
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = embedding(views);
    const at::Tensor y = check_targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!known.any().item<bool>()) return z.sum() * 0.0;  // no IN sample: 0, with a graph
    const at::Tensor d = distances(z).index({known});
    const at::Tensor yk = y.index({known});
    const at::Tensor d_true = d.gather(1, yk.view({-1, 1}));  // [B_in, 1]
    const at::Tensor anchor = d_true.mean();
    const at::Tensor is_target = at::one_hot(yk, d.size(1)).to(at::kBool);
    const at::Tensor e = (d_true - d).clamp_max(50).exp();
    const at::Tensor others = at::where(is_target, at::zeros_like(e), e).sum(1);
    const at::Tensor tuplet = at::log1p(others).mean();
    return alpha_ * anchor + tuplet;
  }

  void attach(ood::Model& model) override {
    const auto info = model.info();
    const std::int64_t c = info.num_classes;
    ood::check_class_count(n_classes_, c, n_pointer_);
    const std::int64_t dim = ood::embedding_size(info, source_);
    if (dim != c)
      throw ood::InvalidArgument(emb_pointer_ + ": " + kName + " places its " + std::to_string(c) +
                                 " anchors in a space of n_classes dimensions, but the model's features have " +
                                 std::to_string(dim));
    if (anchors_.defined() && anchors_.size(0) != c)
      throw ood::InvalidArgument(emb_pointer_ + ": " + kName + " has " + std::to_string(anchors_.size(0)) +
                                 " anchors (from its state) but the model has " + std::to_string(c) + " classes");
    if (!anchors_.defined()) make_anchors(c);
    n_classes_ = c;
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (anchors_.defined()) s.set(kAnchors, anchors_.clone());
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    if (state.size() != 1 || !state.contains(kAnchors))
      throw ood::StateError(std::string(kName) + ": expected a state holding one tensor, '" + kAnchors + "'");
    const at::Tensor& a = state.at(kAnchors);
    if (!at::isFloatingType(a.scalar_type()) || a.dim() != 2 || a.size(0) != a.size(1) ||
        (n_classes_ && a.size(0) != *n_classes_))
      throw ood::StateError(std::string(kName) + ": state '" + kAnchors + "' must be floating [C, C]" +
                            (n_classes_ ? " with C = " + std::to_string(*n_classes_) : std::string()) + ", got " +
                            ood::describe_tensor(a));
    anchors_ = a.detach().clone();
    n_classes_ = a.size(0);
  }

  /// Squared distances of the embedding to every anchor [N, C].
  at::Tensor distances(const at::Tensor& z) const {
    if (!anchors_.defined())
      throw ood::StateError(std::string(kName) + ": the number of classes is unknown (attach the loss to a model)");
    if (z.size(1) != anchors_.size(1))
      throw ood::ShapeError(std::string(kName) + ": the embedding must be [N, " + std::to_string(anchors_.size(1)) +
                            "], got " + ood::describe_tensor(z));
    return ood::squared_distances(z, anchors_.to(z.device(), z.scalar_type()));
  }

  const at::Tensor& embedding(ood::Views& views) const { return ood::select_embedding(views, source_, kName); }

  ood::EmbeddingSource source() const { return source_; }

 private:
  void make_anchors(std::int64_t c) { anchors_ = at::eye(c, at::kFloat) * magnitude_; }

  at::Tensor check_targets(const at::Tensor& z, const at::Tensor& targets) const {
    const at::Tensor y = ood::integer_targets(z, targets, kName);
    const std::int64_t c = anchors_.defined() ? anchors_.size(0) : (n_classes_ ? *n_classes_ : z.size(1));
    ood::require_targets_below(y, c, kName);
    return y;
  }

  std::optional<std::int64_t> n_classes_;
  double magnitude_;
  double alpha_;
  ood::EmbeddingSource source_;
  std::string n_pointer_;
  std::string emb_pointer_;
  at::Tensor anchors_;  // [C, C], fixed
};

at::Tensor cac_score(const at::Tensor& d) {
  return -std::get<0>((d * (1 - at::softmax(-d, 1))).max(1));
}

class CacDetector final : public ood::Detector {
 public:
  CacDetector(std::shared_ptr<Cac> loss, std::string pointer) : loss_(std::move(loss)), pointer_(std::move(pointer)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    ood::request_embedding(n, loss_->source());
    return n;
  }
  void attach(ood::Model& model) override { loss_->attach(model); }
  at::Tensor score(ood::Views& views) override {
    at::NoGradGuard no_grad;
    return cac_score(loss_->distances(loss_->embedding(views)));
  }

 private:
  std::shared_ptr<Cac> loss_;
  std::string pointer_;
};

std::shared_ptr<Cac> make_cac(const ood::Params& p) {
  std::optional<std::int64_t> n;
  if (p.has("n_classes")) n = p.get_int("n_classes");
  return std::make_shared<Cac>(n, p.get_float("magnitude"), p.has("alpha") ? p.get_float("alpha") : 1.0,
                               ood::embedding_source(p), p.pointer("n_classes"), p.pointer("embedding"));
}

void register_components(ood::Registrar& registrar) {
  const std::string formula =
      "d_ik = ||z_i - a_k||^2 with fixed anchors a_k = magnitude * e_k (C x C), z = the embedding.\n"
      "loss = alpha * mean_IN d_{i,y_i} + mean_IN log(1 + sum_{j != y_i} exp(min(d_{i,y_i} - d_ij, 50)));\n"
      "OOD samples (y < 0) are ignored; a batch without IN samples gives 0.\n";
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "class anchor clustering: squared distances to fixed class anchors";
  info.paper = "Miller, Sunderhauf, Milford & Dayoub, Class Anchor Clustering: a Loss for Distance-based Open Set "
               "Recognition, WACV";
  info.year = 2021;
  info.doc = formula +
             "Deviation from pytorch_ood.loss.CACLoss (parity policy): the tuplet term runs over every class but\n"
             "the target, as the paper defines it; pytorch-ood 0.2 uses columns 0..C-2 for every row (the target\n"
             "column included, column C-1 never a negative). Distances, anchors and alpha as pytorch-ood.\n"
             "The embedding must have n_classes dimensions. State: '_centers._params' (the anchors).";
  info.params = {
      ood::ParamSpec::integer("n_classes", "number of classes C (default: the model's)").optional().min(2.0, false),
      ood::ParamSpec::real("magnitude", "magnitude of the class anchors").default_value(1.0).min(0.0, true),
      ood::ParamSpec::real("alpha", "weight of the anchor term").default_value(1.0).min(0.0, false),
      ood::embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) { return make_cac(p); });

  ood::ComponentInfo det;
  det.kind = ood::Kind::Detector;
  det.name = kName;
  det.summary = "CAC rejection score from the distances to the class anchors";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = -max_k d_k * (1 - softmin(d)_k), d_k = ||z - a_k||^2 to the anchors a_k = magnitude * e_k,\n"
      "as pytorch_ood.loss.CACLoss.score (larger for outliers, pytorch-ood's formula).\n"
      "The anchors are fixed, so the checkpoint is optional: with it, the anchors are the loss state\n"
      "'loss._centers._params' of the training state file; without, magnitude * I with C from the model.";
  det.params = {
      ood::ParamSpec::path("checkpoint", "training state file holding the loss state (loss._centers._params)")
          .optional(),
      ood::ParamSpec::real("magnitude", "magnitude of the class anchors (without checkpoint)")
          .default_value(1.0)
          .min(0.0, true),
      ood::embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    auto loss = make_cac(p);
    if (p.has("checkpoint")) {
      ood::restore_loss_state(*loss, p.get_path("checkpoint"));
    }
    return std::make_shared<CacDetector>(loss, p.base_pointer());
  });
}

}  // namespace

OOD_PLUGIN("cac", "Class anchor clustering loss and detector", register_components)
