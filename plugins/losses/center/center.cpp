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

#include "ood/detector.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

constexpr const char* kName = "center";
constexpr const char* kCenters = "_centers._params";  // pytorch-ood's state_dict key

struct Config {
  ood::CenterSizes sizes;
  double magnitude = 1.0, radius = 0.0;
  bool fixed = false;
  ood::EmbeddingSource source = ood::EmbeddingSource::Logits;
  std::uint64_t seed = 0;
};

class Center final : public ood::Loss {
 public:
  explicit Center(Config cfg) : cfg_(std::move(cfg)), table_(kName, kCenters, "n_dim", cfg_.source, cfg_.sizes) {
    if (table_.n_classes() && table_.n_dim()) init_centers(*table_.n_classes(), *table_.n_dim());
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& z = table_.embedding(views);
    const at::Tensor dm = table_.distances(z);
    const at::Tensor y = table_.targets(z, targets);
    const at::Tensor known = y >= 0;
    if (!known.any().item<bool>()) return dm.sum() * 0.0;  // pytorch-ood: 0 (here with a graph)
    const at::Tensor dk = dm.index({known});
    const at::Tensor mask = at::one_hot(y.index({known}), dk.size(1)).to(dk.scalar_type());
    return ((dk - cfg_.radius).relu() * mask).clamp(1e-12, 1e12).mean();
  }

  std::vector<at::Tensor> parameters() override {
    if (cfg_.fixed || !table_.defined()) return {};
    return {table_.centers()};
  }

  void attach(ood::Model& model) override {
    table_.attach(model);
    if (!table_.defined()) init_centers(*table_.n_classes(), *table_.n_dim());
  }

  ood::TensorDict state() const override { return table_.state(); }
  void load_state(const ood::TensorDict& state) override { table_.load(state, /*requires_grad=*/!cfg_.fixed); }

  const ood::CenterTable& centers() const { return table_; }

 private:
  void init_centers(std::int64_t c, std::int64_t d) {
    at::Tensor centers = ood::CenterTable::initial(c, d, cfg_.seed);
    if (c == d && cfg_.fixed) centers = centers * cfg_.magnitude;  // magnitude scales fixed eye() centres only
    if (!cfg_.fixed) centers.requires_grad_(true);
    table_.centers() = centers;
  }

  Config cfg_;
  ood::CenterTable table_;  // [C, D]
};

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
      ood::embedding_param(),
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_params(p, "n_dim");
    cfg.magnitude = p.get_float("magnitude");
    cfg.radius = p.get_float("radius");
    cfg.fixed = p.get_bool("fixed");
    cfg.source = ood::embedding_source(p);
    cfg.seed = ood::component_seed(p, ctx, kName);
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
      ood::embedding_param(),
  };
  registrar.add_detector(det, [](const ood::Params& p, ood::Context&) {
    Config cfg;
    cfg.sizes = ood::CenterSizes::from_checkpoint(p);
    cfg.fixed = true;
    cfg.source = ood::embedding_source(p);
    auto loss = std::make_shared<Center>(cfg);
    return ood::NearestCenterDetector::from_checkpoint(loss, loss->centers(), p.get_path("checkpoint"));
  });
}

}  // namespace

OOD_PLUGIN("center", "Center loss and detector", register_components)
