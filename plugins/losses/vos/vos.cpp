// VOS (Du, Wang, Cai & Li, "VOS: Learning What You Don't Know by Virtual Outlier
// Synthesis", ICLR 2022): cross-entropy plus an uncertainty regulariser that separates
// the weighted energy of IN samples from that of outliers with a learned logistic
// regression phi, as pytorch-ood's VirtualOutlierSynthesizingRegLoss (synthesize: true)
// and VOSRegLoss (synthesize: false, real outliers with targets < 0).
//
//   E(z)  = -(m + log sum_c relu(w_c) exp(z_c - m)), m = max_c z_c   (w: weights_energy)
//   reg   = mean over IN and outlier energies of CE(phi(E), 1 for IN / 0 for outliers)
//   loss  = reduction(CE(logits, y)) + reduction(alpha * reg)   ('none': reg added to each entry)
//
// Synthesis: per class a FIFO queue of `sample_number` penultimate features (filled first;
// reg = 0 until every queue is full); then each call pushes the batch, fits one shared
// covariance X^T X / n + 1e-4 I around the class means, draws `sample_from` points per class
// (MultivariateNormal.rsample), keeps the `select` lowest-density ones and takes the energy of
// the model's head on them. Draws come from the loss's own generator (seeded from the
// component's seed, checkpointed), in pytorch-ood's order.
#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/params.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "vos";

struct VosConfig {
  double alpha;
  std::string reduction;
  bool synthesize;
  int64_t sample_number, select, sample_from;
  std::optional<int64_t> num_classes, num_features;
  std::string classes_pointer, features_pointer;
  std::uint64_t seed;
};

class Vos final : public ood::Loss {
 public:
  explicit Vos(VosConfig cfg) : cfg_(std::move(cfg)), gen_(ood::make_generator(cfg_.seed)) {}

  void attach(ood::Model& model) override {
    const ood::ModelInfo mi = model.info();
    ood::check_class_count(cfg_.num_classes, mi.num_classes, cfg_.classes_pointer, "num_classes");
    if (cfg_.num_features && *cfg_.num_features != mi.feature_dim)
      throw ood::InvalidArgument(cfg_.features_pointer + ": num_input_last_layer is " +
                                 std::to_string(*cfg_.num_features) + " but the model's penultimate features have " +
                                 std::to_string(mi.feature_dim) + " dimensions");
    if (!phi_w_.defined()) create(mi.num_classes, mi.feature_dim, model.device());
  }

  std::vector<at::Tensor> parameters() override {
    if (!phi_w_.defined()) return {};
    return {phi_w_, phi_b_, we_w_, we_b_};
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    ood::check_dense_logits_and_targets(logits, targets, kName);
    const int64_t c = logits.size(1);
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    if (!phi_w_.defined()) {
      if (cfg_.synthesize) {
        const at::Tensor& f = views.features();
        create(c, f.size(1), logits.device());
      } else {
        create(c, cfg_.num_features.value_or(0), logits.device());
      }
    }
    if (we_w_.size(1) != c)
      throw ood::ShapeError(std::string(kName) + ": logits " + ood::describe_tensor(logits) + " have " +
                            std::to_string(c) + " classes, the loss was built for " + std::to_string(we_w_.size(1)));
    // pytorch-ood's cross_entropy: OOD entries 0, then the reduction over all entries.
    const at::Tensor picked = -at::log_softmax(logits, 1).gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor ce = at::where(y >= 0, picked, at::zeros_like(picked));
    at::Tensor reg;
    if (cfg_.synthesize) {
      if ((y < 0).any().item<bool>())
        throw ood::InvalidArgument(std::string(kName) +
                                   ": outlier targets (< 0) in a batch; virtual outlier synthesis trains on IN samples "
                                   "only (use \"synthesize\": false to regularise with real outliers)");
      if (logits.dim() != 2)
        throw ood::NotSupported(std::string(kName) + ": virtual outlier synthesis on segmentation logits " +
                                ood::describe_tensor(logits) + " (pytorch-ood does not implement it either)");
      reg = synthesis_regularisation(views, logits, y);
    } else {
      const at::Tensor flat = logits.dim() == 4 ? logits.permute({0, 2, 3, 1}).reshape({-1, c}) : logits;
      const at::Tensor yf = y.reshape({-1});
      const at::Tensor e_in = energy(flat.index_select(0, (yf >= 0).nonzero().squeeze(1)));
      const at::Tensor e_out = energy(flat.index_select(0, (yf < 0).nonzero().squeeze(1)));
      reg = logistic_regularisation(e_in, e_out);
    }
    const at::Tensor weighted = cfg_.alpha * reg;
    if (cfg_.reduction == "none") return ce + weighted;
    if (cfg_.reduction == "sum") return ce.sum() + weighted;
    return ce.mean() + weighted;
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!phi_w_.defined()) return out;
    out.set("phi.weight", phi_w_.detach());
    out.set("phi.bias", phi_b_.detach());
    out.set("weights_energy.weight", we_w_.detach());
    out.set("weights_energy.bias", we_b_.detach());
    if (cfg_.synthesize) {
      out.set("queue", queue_.clone());  // copies: the queues change in place at every call
      out.set("queue_count", count_.clone());
      out.set("rng_state", gen_.get_state());
    }
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    std::vector<std::string> keys = {"phi.weight", "phi.bias", "weights_energy.weight", "weights_energy.bias"};
    if (cfg_.synthesize)
      for (const char* k : {"queue", "queue_count", "rng_state"}) keys.push_back(k);
    for (const auto& k : keys)
      if (!saved.contains(k)) throw ood::StateError(std::string(kName) + ": the state lacks '" + k + "'");
    if (saved.size() != keys.size())
      throw ood::StateError(std::string(kName) + ": the state has " + std::to_string(saved.size()) +
                            " entries, expected " + std::to_string(keys.size()));
    const at::Tensor& pw = saved.at("phi.weight");
    const at::Tensor& pb = saved.at("phi.bias");
    const at::Tensor& ww = saved.at("weights_energy.weight");
    const at::Tensor& wb = saved.at("weights_energy.bias");
    const int64_t c = ww.dim() == 2 ? ww.size(1) : -1;
    if (pw.sizes() != at::IntArrayRef({2, 1}) || pb.sizes() != at::IntArrayRef({2}) || ww.dim() != 2 ||
        ww.size(0) != 1 || wb.sizes() != at::IntArrayRef({1}) || (we_w_.defined() && c != we_w_.size(1)))
      throw ood::StateError(std::string(kName) + ": state phi.weight " + ood::describe_tensor(pw) + ", phi.bias " +
                            ood::describe_tensor(pb) + ", weights_energy.weight " + ood::describe_tensor(ww) +
                            ", weights_energy.bias " + ood::describe_tensor(wb) +
                            " do not fit [2, 1], [2], [1, C], [1]");
    if (cfg_.synthesize) {
      const at::Tensor& q = saved.at("queue");
      const at::Tensor& n = saved.at("queue_count");
      if (q.dim() != 3 || q.size(0) != c || q.size(1) != cfg_.sample_number ||
          (queue_.defined() && q.size(2) != queue_.size(2)) || n.sizes() != at::IntArrayRef({c}))
        throw ood::StateError(std::string(kName) + ": state queue " + ood::describe_tensor(q) + " / queue_count " +
                              ood::describe_tensor(n) + " do not fit [C, sample_number = " +
                              std::to_string(cfg_.sample_number) + ", D] / [C]");
      queue_ = q.to(at::kFloat).clone();
      count_ = n.to(at::kLong).clone();
      try {
        gen_.set_state(saved.at("rng_state"));
      } catch (const std::exception& e) {
        throw ood::StateError(std::string(kName) + ": state 'rng_state' " + ood::describe_tensor(saved.at("rng_state")) +
                              " is not a generator state: " + e.what());
      }
    }
    auto put = [](at::Tensor& dst, const at::Tensor& src) {
      if (dst.defined() && dst.sizes() == src.sizes()) {
        at::NoGradGuard no_grad;
        dst.copy_(src);
      } else {
        dst = src.detach().clone().requires_grad_(true);
      }
    };
    put(phi_w_, pw);
    put(phi_b_, pb);
    put(we_w_, ww);
    put(we_b_, wb);
  }

 private:
  void create(int64_t c, int64_t d, at::Device device) {
    // PyTorch's initialisation: phi = nn.Linear(1, 2) (uniform +-1); weights_energy =
    // nn.Linear(C, 1) with weight uniform_ in [0, 1) (as pytorch-ood's docs) and bias +-1/sqrt(C).
    at::Generator init = ood::make_generator(ood::mix_seed(cfg_.seed, 0x766f73));
    const double bc = 1.0 / std::sqrt(static_cast<double>(c));
    phi_w_ = at::empty({2, 1}, at::kFloat).uniform_(-1.0, 1.0, init).to(device).requires_grad_(true);
    phi_b_ = at::empty({2}, at::kFloat).uniform_(-1.0, 1.0, init).to(device).requires_grad_(true);
    we_w_ = at::empty({1, c}, at::kFloat).uniform_(0.0, 1.0, init).to(device).requires_grad_(true);
    we_b_ = at::empty({1}, at::kFloat).uniform_(-bc, bc, init).to(device).requires_grad_(true);
    if (cfg_.synthesize) {
      queue_ = at::zeros({c, cfg_.sample_number, d}, at::kFloat);
      count_ = at::zeros({c}, at::kLong);
    }
  }

  // Weighted energy of logits [M, C] -> [M].
  at::Tensor energy(const at::Tensor& z) const {
    const at::Tensor w = at::relu(we_w_).to(z.device(), z.scalar_type());
    if (z.size(0) == 0) return at::zeros({0}, z.options());
    const at::Tensor m = std::get<0>(z.max(1, true));
    return -(m.squeeze(1) + at::log((w * at::exp(z - m)).sum(1)));
  }

  at::Tensor logistic_regularisation(const at::Tensor& e_in, const at::Tensor& e_out) const {
    const at::Tensor input = at::cat({e_in, e_out.to(e_in.scalar_type())}, 0).view({-1, 1});
    const at::Tensor labels = at::cat({at::ones({e_in.size(0)}, at::kLong), at::zeros({e_out.size(0)}, at::kLong)})
                                  .to(input.device());
    const at::Tensor out = at::addmm(phi_b_.to(input.device(), input.scalar_type()), input,
                                     phi_w_.to(input.device(), input.scalar_type()).t());
    return -at::log_softmax(out, 1).gather(1, labels.unsqueeze(1)).squeeze(1).mean();
  }

  at::Tensor synthesis_regularisation(ood::Views& views, const at::Tensor& logits, const at::Tensor& y) {
    const at::Tensor features = views.features().detach().to(at::kCPU, at::kFloat);
    if (features.dim() != 2 || features.size(0) != logits.size(0) || features.size(1) != queue_.size(2))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) +
                            " do not match the queue's dimension " + std::to_string(queue_.size(2)));
    const int64_t c = queue_.size(0), s = cfg_.sample_number;
    const at::Tensor yc = y.to(at::kCPU);
    const auto* yp = yc.data_ptr<int64_t>();
    auto* np = count_.data_ptr<int64_t>();
    const bool full = count_.sum().item<int64_t>() == c * s;
    if (!full) {
      for (int64_t i = 0; i < yc.size(0); ++i) {
        const int64_t k = yp[i];
        if (np[k] < s) queue_[k][np[k]].copy_(features[i]);
        if (np[k] < s) ++np[k];
      }
      return at::zeros({}, logits.options());
    }
    for (int64_t i = 0; i < yc.size(0); ++i) {
      const int64_t k = yp[i];
      queue_[k] = at::cat({queue_[k].slice(0, 1), features[i].view({1, -1})}, 0);
    }
    const at::Tensor means = queue_.mean(1);                                        // [C, D]
    const at::Tensor centred = (queue_ - means.unsqueeze(1)).reshape({c * s, -1});  // class by class
    const int64_t d = queue_.size(2);
    const at::Tensor cov = at::mm(centred.t(), centred) / static_cast<double>(c * s) + 0.0001 * at::eye(d, at::kFloat);
    const at::Tensor l = at::linalg_cholesky(cov);
    const double half_log_det = l.diagonal().log().sum().item<double>();
    std::vector<at::Tensor> picked;
    for (int64_t k = 0; k < c; ++k) {
      // MultivariateNormal(means[k], cov).rsample((sample_from,)) and log_prob, as torch.
      const at::Tensor eps = at::empty({cfg_.sample_from, d}, at::kFloat).normal_(0.0, 1.0, gen_);
      const at::Tensor samples = means[k] + at::matmul(l, eps.unsqueeze(-1)).squeeze(-1);
      const at::Tensor diff = samples - means[k];
      const at::Tensor sol = at::linalg_solve_triangular(l, diff.t(), /*upper=*/false);
      const at::Tensor maha = sol.pow(2).sum(0);
      const at::Tensor log_prob = -0.5 * (d * std::log(2 * M_PI) + maha) - half_log_det;
      const at::Tensor index = std::get<1>(at::topk(-log_prob, cfg_.select));
      picked.push_back(samples.index_select(0, index));
    }
    const at::Tensor ood_samples = at::cat(picked, 0).to(logits.device());
    if (!views.has_model())
      throw ood::StateError(std::string(kName) +
                            ": virtual outlier synthesis needs the model's head (views without a model)");
    ood::Model& model = views.model();
    const at::Tensor head_logits = model.head(ood_samples.to(logits.scalar_type()));
    return logistic_regularisation(energy(logits), energy(head_logits));
  }

  VosConfig cfg_;
  at::Generator gen_;
  at::Tensor phi_w_, phi_b_, we_w_, we_b_;
  at::Tensor queue_, count_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "cross-entropy plus a learned energy regulariser against virtual (synthesised) or real outliers";
  info.paper = "Du, Wang, Cai & Li, VOS: Learning What You Don't Know by Virtual Outlier Synthesis, ICLR";
  info.year = 2022;
  info.doc =
      "E(z) = -(m + log sum_c relu(w_c) exp(z_c - m)), m = max_c z_c (w = weights_energy, learned);\n"
      "reg = mean over IN and outlier energies of the cross-entropy of phi(E) (phi = Linear(1, 2),\n"
      "learned) against 1 for IN and 0 for outliers; loss = reduction(CE) + reduction(alpha * reg)\n"
      "('none': reg added to every entry's CE; CE is 0 for OOD entries and 'mean' runs over all).\n"
      "synthesize true (VirtualOutlierSynthesizingRegLoss): IN targets only; per-class FIFO queues of\n"
      "sample_number penultimate features, reg = 0 until all are full; then each batch is pushed,\n"
      "one covariance X^T X / n + 1e-4 I is fitted around the class means, sample_from points per\n"
      "class are drawn from N(mean_c, cov), the `select` of lowest density per class go through the\n"
      "model's head, and their energies are the outliers of reg. Draws use the loss's generator\n"
      "(seed: `seed`, else derived from the pipeline seed; saved with the queues in the state), in\n"
      "the order of torch.distributions.MultivariateNormal, so a seeded run reproduces pytorch-ood.\n"
      "synthesize false (VOSRegLoss): the outliers are the samples with targets < 0 (classification\n"
      "or segmentation). Learned parts: phi.weight/bias, weights_energy.weight/bias (the bias is\n"
      "unused, as in pytorch-ood). Matches pytorch_ood.loss.VirtualOutlierSynthesizingRegLoss and\n"
      "VOSRegLoss; weights_energy.weight is initialised uniform in [0, 1) as pytorch-ood's docs.";
  info.params = {
      ood::ParamSpec::real("alpha", "weight of the regulariser").default_value(0.1).min(0.0),
      ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined").default_value("mean"),
      ood::ParamSpec::boolean("synthesize", "synthesise virtual outliers (true) or use the batch's outliers (false)")
          .default_value(true),
      ood::ParamSpec::integer("num_classes", "number of classes (the model's when absent)").optional().min(1),
      ood::ParamSpec::integer("num_input_last_layer", "penultimate feature size (the model's when absent)")
          .optional()
          .min(1),
      ood::ParamSpec::integer("sample_number", "queue length per class").default_value(1000).min(2),
      ood::ParamSpec::integer("select", "lowest-density samples kept per class").default_value(1).min(1),
      ood::ParamSpec::integer("sample_from", "points drawn per class").default_value(10000).min(1),
      ood::ParamSpec::integer("seed", "seed of the sampling generator (derived from the pipeline seed when absent)")
          .optional()
          .min(0)};
  info.check = [](const ood::Params& p) {
    if (p.get_int("select") > p.get_int("sample_from"))
      throw ood::InvalidArgument(p.pointer("select") + ": select (" + std::to_string(p.get_int("select")) +
                                 ") must not exceed sample_from (" + std::to_string(p.get_int("sample_from")) + ")");
  };
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    VosConfig cfg;
    cfg.alpha = p.get_float("alpha");
    cfg.reduction = p.get_string("reduction");
    cfg.synthesize = p.get_bool("synthesize");
    cfg.sample_number = p.get_int("sample_number");
    cfg.select = p.get_int("select");
    cfg.sample_from = p.get_int("sample_from");
    if (cfg.select > cfg.sample_from)
      throw ood::InvalidArgument(p.pointer("select") + ": select must not exceed sample_from");
    if (p.has("num_classes")) cfg.num_classes = p.get_int("num_classes");
    if (p.has("num_input_last_layer")) cfg.num_features = p.get_int("num_input_last_layer");
    cfg.classes_pointer = p.pointer("num_classes");
    cfg.features_pointer = p.pointer("num_input_last_layer");
    cfg.seed = ood::component_seed(p, ctx, "vos");
    return std::make_shared<Vos>(std::move(cfg));
  });
}

}  // namespace

OOD_PLUGIN("vos", "Virtual outlier synthesis (VOS) loss", register_components)
