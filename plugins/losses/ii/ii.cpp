// II loss (intra-class spread minus inter-class separation) with running class centres,
// as pytorch-ood's IILoss, and a detector scoring with the distance to the nearest
// running centre.
//
//   training:   mu_k = mean of the batch's IN embeddings of class k (with gradient);
//               running centres c_k <- (mu_k + c_k * n) / (n + 1) for the classes present, n += 1
//               (without autograd history: the buffers are updated from detached values)
//   evaluation (the model in eval mode): mu = the running centres, no update
//   intra = sum_IN ||z_i - mu_{y_i}||^2 / B_in; inter = min over pairs of present classes j != k of
//   ||mu_j - mu_k||^2; loss = intra - alpha * inter
//   score = min_k ||z - c_k||^2
//
// Hassen & Chan, "Learning a Neural-network-based Representation for Open Set Recognition",
// SDM 2020.
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

constexpr const char* kName = "ii";
constexpr const char* kCenters = "running_centers.running_centers";  // pytorch-ood's state_dict keys
constexpr const char* kCount = "running_centers.num_batches_tracked";

at::Tensor pairwise_sq(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

struct Config {
  std::optional<std::int64_t> n_classes, n_embedding;
  double alpha = 1.0;
  bool features = false;
  std::string n_classes_pointer, n_embedding_pointer;
};

class Ii final : public ood::Loss {
 public:
  explicit Ii(Config cfg) : cfg_(std::move(cfg)) {
    if (cfg_.n_classes && cfg_.n_embedding) reset(*cfg_.n_classes, *cfg_.n_embedding);
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = embedding(views);
    require_centers(z);
    const at::Tensor y = check_targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!known.any().item<bool>()) return z.sum() * 0.0;
    const at::Tensor x = z.index({known});
    const at::Tensor yk = y.index({known});
    const std::int64_t c = centers_.size(0);
    if (centers_.scalar_type() != z.scalar_type()) {  // buffers follow the embedding's dtype
      centers_ = centers_.to(z.scalar_type());
      count_ = count_.to(z.scalar_type());
    }
    const at::Tensor classes = std::get<0>(at::_unique(yk, /*sorted=*/true));
    const bool training = !views.has_model() || views.model().mode() == ood::ModelMode::Train;
    at::Tensor mu;
    if (training) {
      const at::Tensor sums = at::zeros({c, x.size(1)}, x.options()).index_add(0, yk, x);
      const at::Tensor counts = at::bincount(yk, {}, c).to(x.scalar_type()).clamp_min(1);
      mu = sums / counts.unsqueeze(1);  // rows of absent classes are never used
      at::NoGradGuard no_grad;
      const at::Tensor cur = centers_.to(z.device());
      const at::Tensor updated = (mu.detach().index({classes}) + cur.index({classes}) * count_.to(z.device())) /
                                 (count_.to(z.device()) + 1);
      centers_.index_put_({classes.cpu()}, updated.cpu());
      count_ += 1;
    } else {
      mu = centers_.to(z.device());
    }
    const at::Tensor intra = (x - mu.index({yk})).pow(2).sum() / static_cast<double>(x.size(0));
    const at::Tensor m = mu.index({classes});
    const at::Tensor d = pairwise_sq(m, m);
    const at::Tensor eye = at::eye(m.size(0), d.options().dtype(at::kBool));
    const at::Tensor inter = at::where(eye, at::full_like(d, 1e24), d).min();
    return intra - cfg_.alpha * inter;
  }

  void attach(ood::Model& model) override {
    const auto info = model.info();
    const std::int64_t c = info.num_classes;
    const std::int64_t d = cfg_.features ? info.feature_dim : info.num_classes;
    if (cfg_.n_classes && *cfg_.n_classes != c)
      throw ood::InvalidArgument(cfg_.n_classes_pointer + ": n_classes is " + std::to_string(*cfg_.n_classes) +
                                 " but the model has " + std::to_string(c) + " classes");
    if (cfg_.n_embedding && *cfg_.n_embedding != d)
      throw ood::InvalidArgument(cfg_.n_embedding_pointer + ": n_embedding is " + std::to_string(*cfg_.n_embedding) +
                                 " but the embedding (" + (cfg_.features ? "features" : "logits") + ") has " +
                                 std::to_string(d) + " dimensions");
    cfg_.n_classes = c;
    cfg_.n_embedding = d;
    if (!centers_.defined()) reset(c, d);
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (centers_.defined()) {
      s.set(kCenters, centers_.clone());
      s.set(kCount, count_.clone());
    }
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    if (state.size() != 2 || !state.contains(kCenters) || !state.contains(kCount))
      throw ood::StateError(std::string(kName) + ": expected a state holding two tensors, '" + kCenters + "' and '" +
                            kCount + "'");
    const at::Tensor& c = state.at(kCenters);
    const at::Tensor& n = state.at(kCount);
    if (!at::isFloatingType(c.scalar_type()) || c.dim() != 2 || (cfg_.n_classes && c.size(0) != *cfg_.n_classes) ||
        (cfg_.n_embedding && c.size(1) != *cfg_.n_embedding))
      throw ood::StateError(std::string(kName) + ": state '" + kCenters + "' must be floating [" +
                            (cfg_.n_classes ? std::to_string(*cfg_.n_classes) : "C") + ", " +
                            (cfg_.n_embedding ? std::to_string(*cfg_.n_embedding) : "D") + "], got " +
                            ood::describe_tensor(c));
    if (n.numel() != 1)
      throw ood::StateError(std::string(kName) + ": state '" + kCount + "' must hold one number, got " +
                            ood::describe_tensor(n));
    centers_ = c.detach().clone();
    count_ = n.detach().reshape({1}).to(c.scalar_type()).clone();
    cfg_.n_classes = c.size(0);
    cfg_.n_embedding = c.size(1);
  }

  /// Squared distances to the running centres [N, C].
  at::Tensor distances(const at::Tensor& z) const {
    require_centers(z);
    return pairwise_sq(z, centers_.to(z.device(), z.scalar_type()));
  }

  const at::Tensor& embedding(ood::Views& views) const {
    const at::Tensor& z = cfg_.features ? views.features() : views.logits();
    ood::require_floating(z, kName, cfg_.features ? "features" : "logits", 2, "[N, D]");
    return z;
  }

  bool uses_features() const { return cfg_.features; }

 private:
  void reset(std::int64_t c, std::int64_t d) {
    centers_ = at::zeros({c, d}, at::kFloat);
    count_ = at::zeros({1}, at::kFloat);
  }

  void require_centers(const at::Tensor& z) const {
    if (!centers_.defined())
      throw ood::StateError(std::string(kName) +
                            ": the number of classes or the embedding size is unknown (attach the loss to a model)");
    if (z.size(1) != centers_.size(1))
      throw ood::ShapeError(std::string(kName) + ": the embedding must be [N, " + std::to_string(centers_.size(1)) +
                            "], got " + ood::describe_tensor(z));
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
  at::Tensor centers_;  // [C, D] running centres (buffer, no autograd history)
  at::Tensor count_;    // [1] batches tracked
};

class IiDetector final : public ood::Detector {
 public:
  IiDetector(std::shared_ptr<Ii> loss, std::string file) : loss_(std::move(loss)), file_(std::move(file)) {}

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
  std::shared_ptr<Ii> loss_;
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
  info.summary = "ii loss: intra-class spread minus inter-class separation, running class centres";
  info.paper = "Hassen & Chan, Learning a Neural-network-based Representation for Open Set Recognition, SDM";
  info.year = 2020;
  info.doc =
      "Training (model in train mode): mu_k = batch mean of the IN embeddings of class k; the running\n"
      "centres c_k <- (mu_k + c_k * n) / (n + 1) for the classes present, n += 1. Model in eval mode:\n"
      "mu = the running centres, no update.\n"
      "loss = sum_IN ||z_i - mu_{y_i}||^2 / B_in - alpha * min_{j != k present} ||mu_j - mu_k||^2\n"
      "(squared distances as pytorch_ood.utils.pairwise_distances; with one class present the minimum\n"
      "is the diagonal value 1e24, as pytorch-ood). OOD samples (y < 0) are ignored; none IN gives 0.\n"
      "As pytorch_ood.loss.IILoss, except (parity policy): the running centres are updated from\n"
      "detached values and carry no autograd history, so evaluation after training works (pytorch-ood's\n"
      "backward of an eval-mode call after training raises). State: 'running_centers.running_centers',\n"
      "'running_centers.num_batches_tracked' (pytorch-ood's names).";
  info.params = {
      ood::ParamSpec::integer("n_classes", "number of classes C (default: the model's)").optional().min(1.0, false),
      ood::ParamSpec::integer("n_embedding", "embedding size D (default: the model's logits or features)")
          .optional()
          .min(1.0, false),
      ood::ParamSpec::real("alpha", "weight of the inter-class separation").default_value(1.0),
      embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    if (p.has("n_classes")) cfg.n_classes = p.get_int("n_classes");
    if (p.has("n_embedding")) cfg.n_embedding = p.get_int("n_embedding");
    cfg.alpha = p.get_float("alpha");
    cfg.features = p.get_string("embedding") == "features";
    cfg.n_classes_pointer = p.pointer("n_classes");
    cfg.n_embedding_pointer = p.pointer("n_embedding");
    return std::make_shared<Ii>(std::move(cfg));
  });

  ood::ComponentInfo det;
  det.kind = ood::Kind::Detector;
  det.name = kName;
  det.summary = "squared distance to the nearest running class centre of a trained ii loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = min_k ||z - c_k||^2 (larger for outliers), c = the running centres of the trained loss,\n"
      "read from the training state file (loss.running_centers.running_centers and\n"
      "loss.running_centers.num_batches_tracked); z = the embedding the loss was trained on.\n"
      "The paper's outlier score: the distance to the nearest class mean.";
  det.params = {
      ood::ParamSpec::path("checkpoint", "training state file holding the loss's running centres"),
      embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.features = p.get_string("embedding") == "features";
    cfg.n_classes_pointer = p.pointer("checkpoint");
    cfg.n_embedding_pointer = p.pointer("checkpoint");
    auto loss = std::make_shared<Ii>(cfg);
    const auto file = p.get_path("checkpoint");
    try {
      loss->load_state(loss_entries(file));
    } catch (const ood::StateError& e) {
      throw ood::StateError(file.string() + ": " + e.what());
    }
    return std::make_shared<IiDetector>(loss, file.string());
  });
}

}  // namespace

OOD_PLUGIN("ii", "II loss and detector", register_components)
