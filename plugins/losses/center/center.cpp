// Center loss (generalised, with a radius) on the squared distances to class centres, as
// pytorch-ood's CenterLoss, and a detector scoring with the distance to the nearest
// trained centre.
//
//   d_ik = ||z_i - mu_k||^2, z = the embedding
//   loss = mean over the B_in x C entries of clamp(relu(d_ik - radius) * [k == y_i], 1e-12, 1e12)
//   score = min_k d_k
//
// Wen, Zhang, Li & Qiao, "A Discriminative Feature Learning Approach for Deep Face
// Recognition", ECCV 2016.
#include <ATen/ATen.h>

#include <optional>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "center";
constexpr const char* kCenters = "_centers._params";  // pytorch-ood's state_dict key

at::Tensor pairwise_sq(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

struct Config {
  std::optional<std::int64_t> n_classes, n_dim;
  double magnitude = 1.0, radius = 0.0;
  bool fixed = false, features = false;
  std::uint64_t seed = 0;
  std::string n_classes_pointer, n_dim_pointer;
};

class Center final : public ood::Loss {
 public:
  explicit Center(Config cfg) : cfg_(std::move(cfg)) {
    if (cfg_.n_classes && cfg_.n_dim) init_centers(*cfg_.n_classes, *cfg_.n_dim);
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = embedding(views);
    const at::Tensor dm = distances(z);
    const at::Tensor y = check_targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!known.any().item<bool>()) return dm.sum() * 0.0;  // pytorch-ood: 0 (here with a graph)
    const at::Tensor dk = dm.index({known});
    const at::Tensor mask = at::one_hot(y.index({known}), dk.size(1)).to(dk.scalar_type());
    return ((dk - cfg_.radius).relu() * mask).clamp(1e-12, 1e12).mean();
  }

  std::vector<at::Tensor> parameters() override {
    if (cfg_.fixed || !centers_.defined()) return {};
    return {centers_};
  }

  void attach(ood::Model& model) override {
    const auto info = model.info();
    const std::int64_t c = info.num_classes;
    const std::int64_t d = cfg_.features ? info.feature_dim : info.num_classes;
    if (cfg_.n_classes && *cfg_.n_classes != c)
      throw ood::InvalidArgument(cfg_.n_classes_pointer + ": n_classes is " + std::to_string(*cfg_.n_classes) +
                                 " but the model has " + std::to_string(c) + " classes");
    if (cfg_.n_dim && *cfg_.n_dim != d)
      throw ood::InvalidArgument(cfg_.n_dim_pointer + ": n_dim is " + std::to_string(*cfg_.n_dim) +
                                 " but the embedding (" + (cfg_.features ? "features" : "logits") + ") has " +
                                 std::to_string(d) + " dimensions");
    if (centers_.defined() && (centers_.size(0) != c || centers_.size(1) != d))
      throw ood::InvalidArgument(cfg_.n_classes_pointer + ": " + kName + " has centres " + ood::describe_tensor(centers_) + " but the model needs [" +
                                 std::to_string(c) + ", " + std::to_string(d) + "]");
    cfg_.n_classes = c;
    cfg_.n_dim = d;
    if (!centers_.defined()) init_centers(c, d);
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (centers_.defined()) s.set(kCenters, centers_.detach().clone());
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    if (state.size() != 1 || !state.contains(kCenters))
      throw ood::StateError(std::string(kName) + ": expected a state holding one tensor, '" + kCenters + "'");
    const at::Tensor& c = state.at(kCenters);
    if (!at::isFloatingType(c.scalar_type()) || c.dim() != 2 || (cfg_.n_classes && c.size(0) != *cfg_.n_classes) ||
        (cfg_.n_dim && c.size(1) != *cfg_.n_dim))
      throw ood::StateError(std::string(kName) + ": state '" + kCenters + "' must be floating [" +
                            (cfg_.n_classes ? std::to_string(*cfg_.n_classes) : "C") + ", " +
                            (cfg_.n_dim ? std::to_string(*cfg_.n_dim) : "D") + "], got " + ood::describe_tensor(c));
    at::NoGradGuard no_grad;
    if (centers_.defined() && centers_.sizes() == c.sizes() && centers_.scalar_type() == c.scalar_type()) {
      centers_.copy_(c);  // in place: an optimiser holding the parameter keeps it
    } else {
      centers_ = c.detach().clone();
      if (!cfg_.fixed) centers_.requires_grad_(true);
    }
    cfg_.n_classes = c.size(0);
    cfg_.n_dim = c.size(1);
  }

  /// Squared distances of the embedding to every centre [N, C].
  at::Tensor distances(const at::Tensor& z) const {
    if (!centers_.defined())
      throw ood::StateError(std::string(kName) +
                            ": the number of classes or the embedding size is unknown (attach the loss to a model)");
    if (z.size(1) != centers_.size(1))
      throw ood::ShapeError(std::string(kName) + ": the embedding must be [N, " + std::to_string(centers_.size(1)) +
                            "], got " + ood::describe_tensor(z));
    return pairwise_sq(z, centers_.to(z.device(), z.scalar_type()));
  }

  const at::Tensor& embedding(ood::Views& views) const {
    const at::Tensor& z = cfg_.features ? views.features() : views.logits();
    ood::require_floating(z, kName, cfg_.features ? "features" : "logits", 2, "[N, D]");
    return z;
  }

  bool uses_features() const { return cfg_.features; }

 private:
  void init_centers(std::int64_t c, std::int64_t d) {
    if (c == d) {
      centers_ = at::eye(c, at::kFloat);
      if (cfg_.fixed) centers_ = centers_ * cfg_.magnitude;
    } else {
      at::Generator gen = ood::make_generator(cfg_.seed);
      centers_ = at::randn({c, d}, gen, at::kFloat);
    }
    if (!cfg_.fixed) centers_.requires_grad_(true);
  }

  at::Tensor check_targets(const at::Tensor& z, const at::Tensor& targets) const {
    if (at::isFloatingType(targets.scalar_type()) || targets.scalar_type() == at::kBool || targets.dim() != 1 ||
        targets.size(0) != z.size(0))
      throw ood::ShapeError(std::string(kName) + ": targets must be integers [N] matching the embedding " +
                            ood::describe_tensor(z) + ", got " + ood::describe_tensor(targets));
    const at::Tensor y = targets.to(z.device(), at::kLong);
    const std::int64_t c = centers_.size(0);
    if ((y >= c).any().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": a target is >= the number of classes " + std::to_string(c));
    return y;
  }

  Config cfg_;
  at::Tensor centers_;  // [C, D]
};

class CenterDetector final : public ood::Detector {
 public:
  CenterDetector(std::shared_ptr<Center> loss, std::string file) : loss_(std::move(loss)), file_(std::move(file)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    (loss_->uses_features() ? n.features : n.logits) = true;
    return n;
  }
  void attach(ood::Model& model) override {
    try {
      loss_->attach(model);
    } catch (const ood::InvalidArgument& e) {
      throw ood::InvalidArgument(std::string(e.what()) + " (centres from " + file_ + ")");
    }
  }
  at::Tensor score(ood::Views& views) override {
    at::NoGradGuard no_grad;
    return std::get<0>(loss_->distances(loss_->embedding(views)).min(1));
  }

 private:
  std::shared_ptr<Center> loss_;
  std::string file_;
};

ood::TensorDict loss_entries(const std::filesystem::path& file) {
  const ood::TensorDict all = ood::io::load_state_dict(file);
  ood::TensorDict out;
  for (const auto& [key, value] : all)
    if (key.rfind("loss.", 0) == 0) out.set(key.substr(5), value);
  return out;
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
  info.summary = "center loss: squared distance to the own class centre beyond a radius";
  info.paper = "Wen, Zhang, Li & Qiao, A Discriminative Feature Learning Approach for Deep Face Recognition, ECCV";
  info.year = 2016;
  info.doc =
      "d_ik = ||z_i - mu_k||^2 (z = the embedding, mu = C x D centres);\n"
      "loss = mean over the B_in x C entries of clamp(relu(d_ik - radius) * [k == y_i], 1e-12, 1e12),\n"
      "B_in = the IN samples (OOD samples, y < 0, are ignored; no IN sample gives 0).\n"
      "As pytorch_ood.loss.CenterLoss (parity): radius is compared with the squared distance; centres\n"
      "are eye(C) when n_dim == n_classes (times magnitude only when fixed: learnable centres ignore\n"
      "magnitude, as pytorch-ood), else standard normal (from the pipeline seed; magnitude not applied).\n"
      "Learnable unless fixed; state '_centers._params' (pytorch-ood's name).";
  info.params = {
      ood::ParamSpec::integer("n_classes", "number of classes C (default: the model's)").optional().min(1.0, false),
      ood::ParamSpec::integer("n_dim", "embedding size D (default: the model's logits or features)")
          .optional()
          .min(1.0, false),
      ood::ParamSpec::real("magnitude", "scale of the eye() initialisation of fixed centres").default_value(1.0),
      ood::ParamSpec::real("radius", "radius r: squared distances below it are not penalised")
          .default_value(0.0)
          .min(0.0, false),
      ood::ParamSpec::boolean("fixed", "keep the centres at their initial position (not learnable)")
          .default_value(false),
      embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    Config cfg;
    if (p.has("n_classes")) cfg.n_classes = p.get_int("n_classes");
    if (p.has("n_dim")) cfg.n_dim = p.get_int("n_dim");
    cfg.magnitude = p.get_float("magnitude");
    cfg.radius = p.get_float("radius");
    cfg.fixed = p.get_bool("fixed");
    cfg.features = p.get_string("embedding") == "features";
    cfg.seed = ood::component_seed(p, ctx, kName);
    cfg.n_classes_pointer = p.pointer("n_classes");
    cfg.n_dim_pointer = p.pointer("n_dim");
    return std::make_shared<Center>(std::move(cfg));
  });

  ood::ComponentInfo det;
  det.kind = ood::Kind::Detector;
  det.name = kName;
  det.summary = "squared distance to the nearest centre of a trained center loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = min_k ||z - mu_k||^2 (larger for outliers), mu = the centres of the trained loss,\n"
      "read from the training state file (entry 'loss._centers._params'); z = the embedding the loss\n"
      "was trained on. pytorch-ood's examples score centre losses with the minimum distance.";
  det.params = {
      ood::ParamSpec::path("checkpoint", "training state file holding loss._centers._params"),
      embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.fixed = true;
    cfg.features = p.get_string("embedding") == "features";
    cfg.n_classes_pointer = p.pointer("checkpoint");
    cfg.n_dim_pointer = p.pointer("checkpoint");
    auto loss = std::make_shared<Center>(cfg);
    const auto file = p.get_path("checkpoint");
    try {
      loss->load_state(loss_entries(file));
    } catch (const ood::StateError& e) {
      throw ood::StateError(file.string() + ": " + e.what());
    }
    return std::make_shared<CenterDetector>(loss, file.string());
  });
}

}  // namespace

OOD_PLUGIN("center", "Center loss and detector", register_components)
