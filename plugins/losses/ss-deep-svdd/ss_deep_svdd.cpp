// Semi-supervised Deep SVDD (Deep SAD), as pytorch-ood's SSDeepSVDDLoss except for the
// definition of the terms (parity policy): the IN term is the squared distance and the OOD
// term its reciprocal (pytorch-ood squares the squared distance in both). A detector of the
// same name scores with the distance to the centre.
//
//   d_i = ||z_i - c||^2; loss_i = relu(d_i - r^2) for IN samples (= d_i with the default r = 0),
//   1 / d_i for OOD samples (y < 0)
//   score = ||z - c||^2 - r^2
//
// Ruff, Vandermeulen, Goernitz, Binder, Mueller, Mueller & Kloft, "Deep Semi-Supervised
// Anomaly Detection", ICLR 2020.
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

constexpr const char* kName = "ss-deep-svdd";
constexpr const char* kCenter = "_center._params";  // pytorch-ood's state_dict key, [1, D]

at::Tensor pairwise_sq(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

struct Config {
  std::optional<std::int64_t> n_features;
  bool n_features_given = false;
  float radius = 0;  // float32, as deep-svdd
  std::string reduction = "mean";
  bool features = false;
  at::Tensor center;  // [1, D] when given
  std::string n_features_pointer, center_pointer;
};

class SsDeepSvdd final : public ood::Loss {
 public:
  explicit SsDeepSvdd(Config cfg) : cfg_(std::move(cfg)) {
    if (cfg_.center.defined()) {
      if (cfg_.n_features && *cfg_.n_features != cfg_.center.size(1))
        throw ood::InvalidArgument(cfg_.center_pointer + ": the centre has " + std::to_string(cfg_.center.size(1)) +
                                   " entries but n_features is " + std::to_string(*cfg_.n_features));
      center_ = cfg_.center;
      cfg_.n_features = center_.size(1);
    }
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = embedding(views);
    check_dim(z);
    const at::Tensor y = check_targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!center_.defined()) {
      // the paper's initialisation: the mean embedding of the first (IN) training batch
      if (!known.any().item<bool>()) return apply_reduction(z.sum(1) * 0.0);
      at::NoGradGuard no_grad;
      center_ = z.detach().index({known}).mean(0, /*keepdim=*/true).to(at::kCPU).clone();
    }
    const at::Tensor sq = pairwise_sq(z, center_.to(z.device(), z.scalar_type())).squeeze(1);  // ||z - c||^2
    const at::Tensor r2 = at::scalar_tensor(cfg_.radius, at::kFloat).pow(2).to(z.device(), z.scalar_type());
    const at::Tensor d = sq - r2;
    // the reciprocal of an IN row is never used: 1 there keeps its gradient finite
    const at::Tensor ood_term = 1.0 / at::where(known, at::ones_like(sq), sq);
    const at::Tensor per_sample = at::where(known, d.relu(), ood_term);
    return apply_reduction(per_sample);
  }

  void attach(ood::Model& model) override {
    const auto info = model.info();
    const std::int64_t d = cfg_.features ? info.feature_dim : info.num_classes;
    if (cfg_.n_features && *cfg_.n_features != d)
      throw ood::InvalidArgument((cfg_.center.defined() && !cfg_.n_features_given ? cfg_.center_pointer : cfg_.n_features_pointer) +
                                 ": " + kName + " needs an embedding of " + std::to_string(*cfg_.n_features) +
                                 " dimensions, but the model's " + (cfg_.features ? "features" : "logits") + " have " +
                                 std::to_string(d));
    cfg_.n_features = d;
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (center_.defined()) s.set(kCenter, center_.clone());
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    if (state.empty() && !center_.defined()) return;  // saved before the first batch set the centre
    if (state.size() != 1 || !state.contains(kCenter))
      throw ood::StateError(std::string(kName) + ": expected a state holding one tensor, '" + kCenter + "'");
    const at::Tensor& c = state.at(kCenter);
    if (!at::isFloatingType(c.scalar_type()) || c.dim() != 2 || c.size(0) != 1 || (cfg_.n_features && c.size(1) != *cfg_.n_features))
      throw ood::StateError(std::string(kName) + ": state '" + kCenter + "' must be floating [1, " +
                            (cfg_.n_features ? std::to_string(*cfg_.n_features) : "D") + "], got " + ood::describe_tensor(c));
    center_ = c.detach().clone();
    cfg_.n_features = c.size(1);
  }

  /// ||z - c||^2 - r^2 [N].
  at::Tensor distance(const at::Tensor& z) const {
    if (!center_.defined())
      throw ood::StateError(std::string(kName) + ": the centre is not set (give 'center' or train on a batch first)");
    const at::Tensor r2 = at::scalar_tensor(cfg_.radius, at::kFloat).pow(2).to(z.device(), z.scalar_type());
    return pairwise_sq(z, center_.to(z.device(), z.scalar_type())).squeeze(1) - r2;
  }

  const at::Tensor& embedding(ood::Views& views) const {
    const at::Tensor& z = cfg_.features ? views.features() : views.logits();
    ood::require_floating(z, kName, cfg_.features ? "features" : "logits", 2, "[N, D]");
    return z;
  }

  void check_dim(const at::Tensor& z) const {
    if (cfg_.n_features && z.size(1) != *cfg_.n_features)
      throw ood::ShapeError(std::string(kName) + ": the embedding must be [N, " + std::to_string(*cfg_.n_features) +
                            "], got " + ood::describe_tensor(z));
  }

  bool uses_features() const { return cfg_.features; }
  bool has_center() const { return center_.defined(); }

  Config cfg_;

 private:
  at::Tensor apply_reduction(const at::Tensor& per_sample) const {
    if (cfg_.reduction == "none") return per_sample;
    if (cfg_.reduction == "sum") return per_sample.sum();
    return per_sample.mean();
  }

  at::Tensor check_targets(const at::Tensor& z, const at::Tensor& targets) const {
    if (at::isFloatingType(targets.scalar_type()) || targets.scalar_type() == at::kBool || targets.dim() != 1 ||
        targets.size(0) != z.size(0))
      throw ood::ShapeError(std::string(kName) + ": targets must be integers [N] matching the embedding " +
                            ood::describe_tensor(z) + ", got " + ood::describe_tensor(targets));
    return targets.to(z.device(), at::kLong);
  }

  at::Tensor center_;  // [1, D], fixed
};

class SsDeepSvddDetector final : public ood::Detector {
 public:
  explicit SsDeepSvddDetector(std::shared_ptr<SsDeepSvdd> loss) : loss_(std::move(loss)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    (loss_->uses_features() ? n.features : n.logits) = true;
    return n;
  }
  void attach(ood::Model& model) override { loss_->attach(model); }
  at::Tensor score(ood::Views& views) override {
    at::NoGradGuard no_grad;
    const at::Tensor& z = loss_->embedding(views);
    loss_->check_dim(z);
    return loss_->distance(z);
  }

 private:
  std::shared_ptr<SsDeepSvdd> loss_;
};

ood::TensorDict loss_entries(const std::filesystem::path& file) {
  const ood::TensorDict all = ood::io::load_state_dict(file);
  ood::TensorDict out;
  for (const auto& [key, value] : all)
    if (key.rfind("loss.", 0) == 0) out.set(key.substr(5), value);
  return out;
}

Config config_of(const ood::Params& p) {
  Config cfg;
  if (p.has("n_features")) {
    cfg.n_features = p.get_int("n_features");
    cfg.n_features_given = true;
  }
  cfg.radius = static_cast<float>(p.get_float("radius"));
  if (p.has("reduction")) cfg.reduction = p.get_string("reduction");
  cfg.features = p.get_string("embedding") == "features";
  if (p.has("center")) {
    const auto v = p.get_float_list("center");
    cfg.center = at::tensor(std::vector<float>(v.begin(), v.end()), at::kFloat).view({1, -1});
  }
  cfg.n_features_pointer = p.pointer("n_features");
  cfg.center_pointer = p.pointer("center");
  return cfg;
}

ood::ParamSpec embedding_param() {
  return ood::ParamSpec::choice("embedding", {"logits", "features"},
                                "the embedding: the model's output (logits, as pytorch-ood's examples) or the "
                                "penultimate features")
      .default_value("logits");
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "semi-supervised Deep SVDD (Deep SAD): IN samples pulled to a centre, outliers pushed away";
  info.paper = "Ruff, Vandermeulen, Goernitz, Binder, Mueller, Mueller & Kloft, Deep Semi-Supervised Anomaly "
               "Detection, ICLR";
  info.year = 2020;
  info.doc =
      "d_i = ||z_i - c||^2; loss_i = relu(d_i - r^2) for IN samples (d_i with the default r = 0) and\n"
      "1 / d_i for OOD samples (y < 0); reduction 'mean' divides by all samples. z = the embedding, c fixed.\n"
      "Deviation from pytorch_ood.loss.SSDeepSVDDLoss (parity policy, Deep SAD's definition): pytorch-ood\n"
      "uses d_i^2 and 1 / d_i^2. pytorch-ood has no radius: 'radius' (default 0) only relaxes the IN term,\n"
      "as deep-svdd. Without 'center', c is the mean embedding of the IN samples of the first training\n"
      "batch (the initialisation of Deep SVDD and Deep SAD; pytorch-ood draws it at random), kept as\n"
      "state. State: '_center._params' [1, D] (pytorch-ood's name).";
  info.params = {
      ood::ParamSpec::integer("n_features", "embedding size D (default: the model's logits or features)")
          .optional()
          .min(1.0, false),
      ood::ParamSpec::real("radius", "radius r of the hypersphere").default_value(0.0).min(0.0, false),
      ood::ParamSpec::list("center", ood::ParamType::Float, "the centre c (D numbers); default: mean of the first batch")
          .optional()
          .items(1),
      ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how the samples' losses are combined")
          .default_value("mean"),
      embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<SsDeepSvdd>(config_of(p));
  });

  ood::ComponentInfo det;
  det.kind = ood::Kind::Detector;
  det.name = kName;
  det.summary = "squared distance to the centre of a trained semi-supervised Deep SVDD loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = ||z - c||^2 - r^2 (larger for outliers); c = the centre from the training state file\n"
      "(entry 'loss._center._params') or the 'center' parameter; z = the embedding the loss was trained on.";
  det.params = {
      ood::ParamSpec::path("checkpoint", "training state file holding loss._center._params").optional(),
      ood::ParamSpec::list("center", ood::ParamType::Float, "the centre c, instead of a checkpoint")
          .optional()
          .items(1),
      ood::ParamSpec::real("radius", "radius r subtracted (squared) from the score").default_value(0.0).min(0.0, false),
      embedding_param(),
  };
  det.check = [](const ood::Params& p) {
    if (p.has("checkpoint") == p.has("center"))
      throw ood::InvalidArgument(p.pointer("checkpoint") + ": give exactly one of 'checkpoint' and 'center'");
  };
  registrar.add_detector(det, [check = det.check](const ood::Params& p, ood::Context&) {
    check(p);
    Config cfg = config_of(p);
    if (p.has("checkpoint")) cfg.n_features_pointer = p.pointer("checkpoint");  // the centre's size comes from there
    auto loss = std::make_shared<SsDeepSvdd>(std::move(cfg));
    if (p.has("checkpoint")) {
      const auto file = p.get_path("checkpoint");
      try {
        loss->load_state(loss_entries(file));
      } catch (const ood::StateError& e) {
        throw ood::StateError(file.string() + ": " + e.what());
      }
      if (!loss->has_center())
        throw ood::StateError(file.string() + ": holds no " + kName + " centre (loss." + kCenter + ")");
    }
    return std::make_shared<SsDeepSvddDetector>(loss);
  });
}

}  // namespace

OOD_PLUGIN("ss-deep-svdd", "Semi-supervised Deep SVDD (Deep SAD) loss and detector", register_components)
