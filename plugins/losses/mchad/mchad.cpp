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

#include "ood/detector.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

constexpr const char* kName = "mchad";
constexpr const char* kCenters = "center_loss._centers._params";  // pytorch-ood's state_dict key

struct Config {
  ood::CenterSizes sizes;
  double radius = 0, margin = 0, weight_center = 1, weight_nll = 1, weight_oe = 1;
  ood::EmbeddingSource source = ood::EmbeddingSource::Logits;
  std::uint64_t seed = 0;
};

class Mchad final : public ood::Loss {
 public:
  explicit Mchad(Config cfg) : cfg_(std::move(cfg)), table_(kName, kCenters, "n_dim", cfg_.source, cfg_.sizes) {
    if (table_.n_classes() && table_.n_dim()) init_centers(*table_.n_classes(), *table_.n_dim());
  }

  /// [center term, nll term, OOD term] before weighting.
  std::vector<at::Tensor> parts(const at::Tensor& z, const at::Tensor& targets) const {
    const at::Tensor dm = table_.distances(z);
    const at::Tensor y = table_.targets(z, targets);
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
    const auto p = parts(table_.embedding(views), targets);
    return cfg_.weight_center * p[0] + cfg_.weight_nll * p[1] + cfg_.weight_oe * p[2];
  }

  std::vector<at::Tensor> parameters() override {
    if (!table_.defined()) return {};
    return {table_.centers()};
  }

  void attach(ood::Model& model) override {
    table_.attach(model);
    if (!table_.defined()) init_centers(*table_.n_classes(), *table_.n_dim());
  }

  ood::TensorDict state() const override { return table_.state(); }
  void load_state(const ood::TensorDict& state) override { table_.load(state, /*requires_grad=*/true); }

  const ood::CenterTable& centers() const { return table_; }

 private:
  void init_centers(std::int64_t c, std::int64_t d) {
    table_.centers() = ood::CenterTable::initial(c, d, cfg_.seed).requires_grad_(true);
  }

  Config cfg_;
  ood::CenterTable table_;  // [C, D], learnable
};

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
      ood::embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_params(p, "n_dim");
    cfg.radius = p.get_float("radius");
    cfg.margin = p.get_float("margin");
    cfg.weight_center = p.get_float("weight_center");
    cfg.weight_nll = p.get_float("weight_nll");
    cfg.weight_oe = p.get_float("weight_oe");
    cfg.source = ood::embedding_source(p);
    cfg.seed = ood::component_seed(p, ctx, kName);
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
      ood::embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_checkpoint(p);
    cfg.source = ood::embedding_source(p);
    auto loss = std::make_shared<Mchad>(cfg);
    return ood::NearestCenterDetector::from_checkpoint(loss, loss->centers(), p.get_path("checkpoint"));
  });
}

}  // namespace

OOD_PLUGIN("mchad", "MCHAD loss and detector", register_components)
