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
#include "ood/io/torch_file.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "cac";
constexpr const char* kAnchors = "_centers._params";  // pytorch-ood's state_dict key

/// pytorch_ood.utils.pairwise_distances: |x|^2 + |c|^2 - 2 x.c, clamped at 0.
at::Tensor pairwise_sq(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

class Cac final : public ood::Loss {
 public:
  Cac(std::optional<std::int64_t> n_classes, double magnitude, double alpha, bool features, std::string n_pointer,
      std::string emb_pointer)
      : n_classes_(n_classes),
        magnitude_(magnitude),
        alpha_(alpha),
        features_(features),
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
    if (n_classes_ && *n_classes_ != c)
      throw ood::InvalidArgument(n_pointer_ + ": n_classes is " + std::to_string(*n_classes_) +
                                 " but the model has " + std::to_string(c) + " classes");
    const std::int64_t dim = features_ ? info.feature_dim : c;
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
    return pairwise_sq(z, anchors_.to(z.device(), z.scalar_type()));
  }

  const at::Tensor& embedding(ood::Views& views) const {
    const at::Tensor& z = features_ ? views.features() : views.logits();
    ood::require_floating(z, kName, features_ ? "features" : "logits", 2, "[N, D]");
    return z;
  }

  bool uses_features() const { return features_; }

 private:
  void make_anchors(std::int64_t c) { anchors_ = at::eye(c, at::kFloat) * magnitude_; }

  at::Tensor check_targets(const at::Tensor& z, const at::Tensor& targets) const {
    if (at::isFloatingType(targets.scalar_type()) || targets.scalar_type() == at::kBool || targets.dim() != 1 ||
        targets.size(0) != z.size(0))
      throw ood::ShapeError(std::string(kName) + ": targets must be integers [N] matching the embedding " +
                            ood::describe_tensor(z) + ", got " + ood::describe_tensor(targets));
    const at::Tensor y = targets.to(z.device(), at::kLong);
    const std::int64_t c = anchors_.defined() ? anchors_.size(0) : (n_classes_ ? *n_classes_ : z.size(1));
    if ((y >= c).any().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": a target is >= the number of classes " + std::to_string(c));
    return y;
  }

  std::optional<std::int64_t> n_classes_;
  double magnitude_;
  double alpha_;
  bool features_;
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
    (loss_->uses_features() ? n.features : n.logits) = true;
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

ood::TensorDict loss_entries(const std::filesystem::path& file) {
  const ood::TensorDict all = ood::io::load_state_dict(file);
  ood::TensorDict out;
  for (const auto& [key, value] : all)
    if (key.rfind("loss.", 0) == 0) out.set(key.substr(5), value);
  return out;
}

std::shared_ptr<Cac> make_cac(const ood::Params& p) {
  std::optional<std::int64_t> n;
  if (p.has("n_classes")) n = p.get_int("n_classes");
  return std::make_shared<Cac>(n, p.get_float("magnitude"), p.has("alpha") ? p.get_float("alpha") : 1.0,
                               p.get_string("embedding") == "features", p.pointer("n_classes"),
                               p.pointer("embedding"));
}

ood::ParamSpec embedding_param() {
  return ood::ParamSpec::choice("embedding", {"logits", "features"},
                                "the embedding: the model's output (logits, as pytorch-ood's examples) or the "
                                "penultimate features")
      .default_value("logits");
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
      embedding_param(),
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
      embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    auto loss = make_cac(p);
    if (p.has("checkpoint")) {
      const auto file = p.get_path("checkpoint");
      try {
        loss->load_state(loss_entries(file));
      } catch (const ood::StateError& e) {
        throw ood::StateError(file.string() + ": " + e.what());
      }
    }
    return std::make_shared<CacDetector>(loss, p.base_pointer());
  });
}

}  // namespace

OOD_PLUGIN("cac", "Class anchor clustering loss and detector", register_components)
