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

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "ii";
constexpr const char* kCenters = "running_centers.running_centers";  // pytorch-ood's state_dict keys
constexpr const char* kCount = "running_centers.num_batches_tracked";

struct Config {
  ood::CenterSizes sizes;
  double alpha = 1.0;
  ood::EmbeddingSource source = ood::EmbeddingSource::Logits;
};

class Ii final : public ood::Loss {
 public:
  explicit Ii(Config cfg) : cfg_(std::move(cfg)), table_(kName, kCenters, "n_embedding", cfg_.source, cfg_.sizes) {
    if (table_.n_classes() && table_.n_dim()) reset(*table_.n_classes(), *table_.n_dim());
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = table_.embedding(views);
    table_.require_embedding(z);
    const at::Tensor y = table_.targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!known.any().item<bool>()) return z.sum() * 0.0;
    const at::Tensor x = z.index({known});
    const at::Tensor yk = y.index({known});
    at::Tensor& centers = table_.centers();
    const std::int64_t c = centers.size(0);
    if (centers.scalar_type() != z.scalar_type()) {  // buffers follow the embedding's dtype
      centers = centers.to(z.scalar_type());
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
      const at::Tensor cur = centers.to(z.device());
      const at::Tensor updated = (mu.detach().index({classes}) + cur.index({classes}) * count_.to(z.device())) /
                                 (count_.to(z.device()) + 1);
      centers.index_put_({classes.cpu()}, updated.cpu());
      count_ += 1;
    } else {
      mu = centers.to(z.device());
    }
    const at::Tensor intra = (x - mu.index({yk})).pow(2).sum() / static_cast<double>(x.size(0));
    const at::Tensor m = mu.index({classes});
    const at::Tensor d = ood::squared_distances(m, m);
    const at::Tensor eye = at::eye(m.size(0), d.options().dtype(at::kBool));
    const at::Tensor inter = at::where(eye, at::full_like(d, 1e24), d).min();
    return intra - cfg_.alpha * inter;
  }

  void attach(ood::Model& model) override {
    table_.attach(model);
    if (!table_.defined()) reset(*table_.n_classes(), *table_.n_dim());
  }

  ood::TensorDict state() const override {
    ood::TensorDict s = table_.state();
    if (table_.defined()) s.set(kCount, count_.clone());
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    if (state.size() != 2 || !state.contains(kCenters) || !state.contains(kCount))
      throw ood::StateError(std::string(kName) + ": expected a state holding two tensors, '" + kCenters + "' and '" +
                            kCount + "'");
    const at::Tensor& c = state.at(kCenters);
    const at::Tensor& n = state.at(kCount);
    table_.check_state(c);
    if (n.numel() != 1)
      throw ood::StateError(std::string(kName) + ": state '" + kCount + "' must hold one number, got " +
                            ood::describe_tensor(n));
    table_.assign(c, /*requires_grad=*/false);  // a buffer: no autograd history
    count_ = n.detach().reshape({1}).to(c.scalar_type()).clone();
  }

  const ood::CenterTable& centers() const { return table_; }

 private:
  void reset(std::int64_t c, std::int64_t d) {
    table_.centers() = at::zeros({c, d}, at::kFloat);
    count_ = at::zeros({1}, at::kFloat);
  }

  Config cfg_;
  ood::CenterTable table_;  // [C, D] running centres (buffer, no autograd history)
  at::Tensor count_;        // [1] batches tracked
};

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
      ood::embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_params(p, "n_embedding");
    cfg.alpha = p.get_float("alpha");
    cfg.source = ood::embedding_source(p);
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
      ood::embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_checkpoint(p);
    cfg.source = ood::embedding_source(p);
    auto loss = std::make_shared<Ii>(cfg);
    return ood::NearestCenterDetector::from_checkpoint(loss, loss->centers(), p.get_path("checkpoint"));
  });
}

}  // namespace

OOD_PLUGIN("ii", "II loss and detector", register_components)
