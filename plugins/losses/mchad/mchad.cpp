// MCHAD (multi-class hypersphere anomaly detection) loss with learnable class centres, as
// pytorch-ood's MCHADLoss except that the outlier term compares squared distances with
// margin^2 (pytorch-ood squares the squared distances again), and a detector scoring with
// the distance to the nearest centre.
//
//   d_ik = ||z_i - mu_k||^2
//   center = mean over B_in x C of clamp(relu(d_ik - radius) * [k == y_i], 1e-12, 1e12)   (CenterLoss)
//   nll    = sum_IN -log softmax(-d_i)_{y_i} / B                                          (all rows)
//   oe     = sum over OOD rows and all classes of relu(margin^2 - d_ik)
//   loss   = weight_center * center + weight_nll * nll + weight_oe * oe
//   score  = min_k d_k
//
// Kirchheim, Filax & Ortmeier, "Multi-Class Hypersphere Anomaly Detection", ICPR 2022.
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

constexpr const char* kName = "mchad";
constexpr const char* kCenters = "center_loss._centers._params";  // pytorch-ood's state_dict key

at::Tensor pairwise_sq(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

struct Config {
  std::optional<std::int64_t> n_classes, n_dim;
  double radius = 0, margin = 0, weight_center = 1, weight_nll = 1, weight_oe = 1;
  bool features = false;
  std::uint64_t seed = 0;
  std::string n_classes_pointer, n_dim_pointer;
};

class Mchad final : public ood::Loss {
 public:
  explicit Mchad(Config cfg) : cfg_(std::move(cfg)) {
    if (cfg_.n_classes && cfg_.n_dim) init_centers(*cfg_.n_classes, *cfg_.n_dim);
  }

  /// [center term, nll term, OOD term] before weighting.
  std::vector<at::Tensor> parts(const at::Tensor& z, const at::Tensor& targets) const {
    const at::Tensor dm = distances(z);
    const at::Tensor y = check_targets(z, targets);
    const at::Tensor known = y >= 0;
    const at::Tensor zero = dm.sum() * 0.0;
    at::Tensor center = zero, nll = zero, oe = zero;
    if (known.any().item<bool>()) {
      const at::Tensor dk = dm.index({known});
      const at::Tensor yk = y.index({known});
      const at::Tensor mask = at::one_hot(yk, dk.size(1)).to(dk.scalar_type());
      center = ((dk - cfg_.radius).relu() * mask).clamp(1e-12, 1e12).mean();
      const at::Tensor picked = at::log_softmax(-dk, 1).gather(1, yk.view({-1, 1}));
      nll = -picked.sum() / static_cast<double>(dm.size(0));  // mean over ALL rows (pytorch-ood)
    }
    const at::Tensor unknown = ~known;
    if (unknown.any().item<bool>())
      oe = (cfg_.margin * cfg_.margin - dm.index({unknown})).relu().sum();
    return {center, nll, oe};
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const auto p = parts(embedding(views), targets);
    return cfg_.weight_center * p[0] + cfg_.weight_nll * p[1] + cfg_.weight_oe * p[2];
  }

  std::vector<at::Tensor> parameters() override {
    if (!centers_.defined()) return {};
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
      centers_ = c.detach().clone().requires_grad_(true);
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
    } else {
      at::Generator gen = ood::make_generator(cfg_.seed);
      centers_ = at::randn({c, d}, gen, at::kFloat);
    }
    centers_.requires_grad_(true);
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
  at::Tensor centers_;  // [C, D], learnable
};

class MchadDetector final : public ood::Detector {
 public:
  MchadDetector(std::shared_ptr<Mchad> loss, std::string file) : loss_(std::move(loss)), file_(std::move(file)) {}

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
  std::shared_ptr<Mchad> loss_;
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
  info.summary = "multi-class hypersphere anomaly detection: learnable centres, margin for outliers";
  info.paper = "Kirchheim, Filax & Ortmeier, Multi-Class Hypersphere Anomaly Detection, ICPR";
  info.year = 2022;
  info.doc =
      "d_ik = ||z_i - mu_k||^2 (z = the embedding, mu = C x D learnable centres);\n"
      "center = mean over B_in x C of clamp(relu(d_ik - radius) * [k == y_i], 1e-12, 1e12) (CenterLoss);\n"
      "nll = sum_IN -log softmax(-d_i)[y_i] / B (mean over all rows, OOD rows 0);\n"
      "oe = sum over OOD rows (y < 0) and all classes of relu(margin^2 - d_ik);\n"
      "loss = weight_center * center + weight_nll * nll + weight_oe * oe.\n"
      "Deviation from pytorch_ood.loss.MCHADLoss (parity policy): oe compares the squared distance with\n"
      "margin^2; pytorch-ood squares the squared distance again (margin^2 - d^4). Otherwise parity:\n"
      "radius compared with the squared distance, centres eye(C) when n_dim == n_classes, else standard\n"
      "normal (from the pipeline seed). State: 'center_loss._centers._params' (pytorch-ood's name).";
  info.params = {
      ood::ParamSpec::integer("n_classes", "number of classes C (default: the model's)").optional().min(1.0, false),
      ood::ParamSpec::integer("n_dim", "embedding size D (default: the model's logits or features)")
          .optional()
          .min(1.0, false),
      ood::ParamSpec::real("radius", "radius of the hyperspheres (compared with squared distances)")
          .default_value(0.0)
          .min(0.0, false),
      ood::ParamSpec::real("margin", "margin around the centres for outliers (radius included)")
          .default_value(0.0)
          .min(0.0, false),
      ood::ParamSpec::real("weight_center", "weight of the center term").default_value(1.0),
      ood::ParamSpec::real("weight_nll", "weight of the softmin cross-entropy term").default_value(1.0),
      ood::ParamSpec::real("weight_oe", "weight of the outlier term").default_value(1.0),
      embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    Config cfg;
    if (p.has("n_classes")) cfg.n_classes = p.get_int("n_classes");
    if (p.has("n_dim")) cfg.n_dim = p.get_int("n_dim");
    cfg.radius = p.get_float("radius");
    cfg.margin = p.get_float("margin");
    cfg.weight_center = p.get_float("weight_center");
    cfg.weight_nll = p.get_float("weight_nll");
    cfg.weight_oe = p.get_float("weight_oe");
    cfg.features = p.get_string("embedding") == "features";
    cfg.seed = ood::component_seed(p, ctx, kName);
    cfg.n_classes_pointer = p.pointer("n_classes");
    cfg.n_dim_pointer = p.pointer("n_dim");
    return std::make_shared<Mchad>(std::move(cfg));
  });

  ood::ComponentInfo det;
  det.kind = ood::Kind::Detector;
  det.name = kName;
  det.summary = "squared distance to the nearest centre of a trained MCHAD loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = min_k ||z - mu_k||^2 (larger for outliers), mu = the learned centres read from the\n"
      "training state file (entry 'loss.center_loss._centers._params'); z = the embedding the loss was\n"
      "trained on. As pytorch-ood's MCHAD example (distances.min(dim=1)).";
  det.params = {
      ood::ParamSpec::path("checkpoint", "training state file holding loss.center_loss._centers._params"),
      embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.features = p.get_string("embedding") == "features";
    cfg.n_classes_pointer = p.pointer("checkpoint");
    cfg.n_dim_pointer = p.pointer("checkpoint");
    auto loss = std::make_shared<Mchad>(cfg);
    const auto file = p.get_path("checkpoint");
    try {
      loss->load_state(loss_entries(file));
    } catch (const ood::StateError& e) {
      throw ood::StateError(file.string() + ": " + e.what());
    }
    return std::make_shared<MchadDetector>(loss, file.string());
  });
}

}  // namespace

OOD_PLUGIN("mchad", "MCHAD loss and detector", register_components)
