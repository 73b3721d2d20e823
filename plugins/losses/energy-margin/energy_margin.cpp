// EnergyMarginLoss (SCONE: Bai, Canal, Du, Kwon, Nowak & Li, "Feed Two Birds with One
// Scone", ICML 2023) as in pytorch-ood: an augmented Lagrangian over
//
//   e_in  = mean_{IN}  sigmoid(lr(logsumexp z))              (lr: a learned Linear(1, 1))
//   e_out = mean_{OOD} sigmoid(-lr(logsumexp z - eta))
//   ce    = mean_{IN}  cross-entropy
//   pen(t, lam, w) = t lam + w/2 t^2 if w t + lam >= 0, else -lam^2 / (2 w)
//   loss  = pen(ce - ce_tol * full_train_loss, lam2, ce_constraint_weight)
//           + out_constraint_weight * e_out
//           + pen(e_in - false_alarm_cutoff, lam, in_constraint_weight)
//
// The logistic regression lr is the loss's learnable part (created in attach, nn.Linear(1, 1)
// initialisation from the component's seed). The multipliers lam, lam2 and the penalty
// weights are state (checkpointed). pytorch-ood's update_hyperparameters (the ALM step after
// each epoch) runs here on the CPU (pytorch-ood calls .cuda() unconditionally): with
// `update_every` = k it runs after every k training batches, on the averages of the IN
// samples' sigmoid energies and cross-entropies of those batches.
#include <ATen/ATen.h>

#include <optional>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "energy-margin";

// The hyperparameters are float32 numbers, as pytorch-ood holds them (torch.tensor(x).float()),
// so that float64 runs reproduce pytorch-ood's float64 numbers too.
struct Hyper {
  float full_train_loss, eta, false_alarm_cutoff, ce_tol, out_constraint_weight, lr_lam, penalty_mult,
      constraint_tol;
};

class EnergyMargin final : public ood::Loss {
 public:
  EnergyMargin(Hyper h, float in_w, float ce_w, float lam, float lam2, std::optional<int64_t> update_every,
               std::uint64_t seed)
      : h_(h), update_every_(update_every), seed_(seed), in_w_(in_w), ce_w_(ce_w), lam_(lam), lam2_(lam2) {
    reset_stats();
  }

  void attach(ood::Model& model) override {
    if (!weight_.defined()) create(model.device());
  }

  std::vector<at::Tensor> parameters() override {
    if (!weight_.defined()) create(at::kCPU);
    return {weight_, bias_};
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    ood::require_sample_targets(targets, logits, "logits", kName);
    ood::require_targets_below(targets, logits.size(1), kName);
    if (!weight_.defined()) create(logits.device());
    const auto dtype = logits.scalar_type();
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor known = y >= 0;
    const at::Tensor idx_in = known.nonzero().squeeze(1), idx_out = (~known).nonzero().squeeze(1);
    const at::Tensor w = weight_.to(logits.device(), dtype).reshape({});
    const at::Tensor b = bias_.to(logits.device(), dtype).reshape({});
    const at::Tensor zero = at::zeros({}, logits.options());
    at::Tensor loss = zero;
    if (idx_in.numel() > 0) {
      const at::Tensor z_in = logits.index_select(0, idx_in);
      const at::Tensor y_in = y.index_select(0, idx_in);
      const at::Tensor sig_in = at::sigmoid(w * at::logsumexp(z_in, {1}) + b);
      const at::Tensor ce_rows = -at::log_softmax(z_in, 1).gather(1, y_in.unsqueeze(1)).squeeze(1);
      const at::Tensor e_in = sig_in.mean();
      const at::Tensor ce = ce_rows.mean();
      const float ce_bound = h_.ce_tol * h_.full_train_loss;  // a float32 product, as pytorch-ood
      loss = loss + penalty(ce - static_cast<double>(ce_bound), lam2_, ce_w_) +
             penalty(e_in - static_cast<double>(h_.false_alarm_cutoff), lam_, in_w_);
      if (update_every_ && at::GradMode::is_enabled()) {
        sum_sigmoid_ += sig_in.detach().to(at::kCPU, at::kDouble).sum().item<double>();
        sum_ce_ += ce_rows.detach().to(at::kCPU, at::kDouble).sum().item<double>();
        count_ += static_cast<double>(idx_in.numel());
      }
    }
    if (idx_out.numel() > 0) {
      const at::Tensor z_out = logits.index_select(0, idx_out);
      const at::Tensor e_out =
          at::sigmoid(-(w * (at::logsumexp(z_out, {1}) - static_cast<double>(h_.eta)) + b)).mean();
      loss = loss + static_cast<double>(h_.out_constraint_weight) * e_out;
    }
    if (update_every_ && at::GradMode::is_enabled() && ++batches_ >= *update_every_) update_hyperparameters();
    return loss;
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (weight_.defined()) {
      out.set("logistic_regression.weight", weight_.detach());
      out.set("logistic_regression.bias", bias_.detach());
    }
    out.set("lam", scalar(lam_));
    out.set("lam2", scalar(lam2_));
    out.set("in_constraint_weight", scalar(in_w_));
    out.set("ce_constraint_weight", scalar(ce_w_));
    out.set("update_stats", at::tensor({sum_sigmoid_, sum_ce_, count_, static_cast<double>(batches_)}, at::kDouble));
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    const std::vector<std::string> keys = {"logistic_regression.weight", "logistic_regression.bias", "lam", "lam2",
                                           "in_constraint_weight", "ce_constraint_weight", "update_stats"};
    for (const auto& k : keys)
      if (!saved.contains(k)) throw ood::StateError(std::string(kName) + ": the state lacks '" + k + "'");
    if (saved.size() != keys.size())
      throw ood::StateError(std::string(kName) + ": the state has " + std::to_string(saved.size()) +
                            " entries, expected " + std::to_string(keys.size()));
    const at::Tensor& w = saved.at("logistic_regression.weight");
    const at::Tensor& b = saved.at("logistic_regression.bias");
    if (!at::isFloatingType(w.scalar_type()) || w.sizes() != at::IntArrayRef({1, 1}) ||
        !at::isFloatingType(b.scalar_type()) || b.sizes() != at::IntArrayRef({1}))
      throw ood::StateError(std::string(kName) + ": logistic_regression.weight " + ood::describe_tensor(w) +
                            " / .bias " + ood::describe_tensor(b) + " are not [1, 1] / [1]");
    for (const char* k : {"lam", "lam2", "in_constraint_weight", "ce_constraint_weight"})
      if (saved.at(k).numel() != 1 || !at::isFloatingType(saved.at(k).scalar_type()))
        throw ood::StateError(std::string(kName) + ": state '" + k + "' must be one floating number, got " +
                              ood::describe_tensor(saved.at(k)));
    if (saved.at("update_stats").numel() != 4)
      throw ood::StateError(std::string(kName) + ": state 'update_stats' must hold 4 numbers");
    if (weight_.defined()) {
      at::NoGradGuard no_grad;
      weight_.copy_(w);
      bias_.copy_(b);
    } else {
      weight_ = w.detach().clone().requires_grad_(true);
      bias_ = b.detach().clone().requires_grad_(true);
    }
    lam_ = saved.at("lam").item<float>();
    lam2_ = saved.at("lam2").item<float>();
    in_w_ = saved.at("in_constraint_weight").item<float>();
    ce_w_ = saved.at("ce_constraint_weight").item<float>();
    const at::Tensor s = saved.at("update_stats").to(at::kDouble).reshape({-1});
    sum_sigmoid_ = s[0].item<double>();
    sum_ce_ = s[1].item<double>();
    count_ = s[2].item<double>();
    batches_ = static_cast<int64_t>(s[3].item<double>());
  }

 private:
  static at::Tensor scalar(float v) { return at::scalar_tensor(v, at::kFloat); }

  // pen(t, lam, w), the branch taken on the value as pytorch-ood does; the constant branch is
  // computed in float32 as pytorch-ood's float32 tensors do.
  static at::Tensor penalty(const at::Tensor& t, float lam, float w) {
    if (static_cast<double>(w) * t.item<double>() + static_cast<double>(lam) >= 0)
      return t * static_cast<double>(lam) + static_cast<double>(w / 2.0f) * t.pow(2);
    const float constant = -(lam * lam) * 0.5f / w;
    return at::scalar_tensor(static_cast<double>(constant), t.options());
  }

  // pytorch-ood's EnergyMarginLoss.update_hyperparameters, on the averages collected since
  // the last update.
  void update_hyperparameters() {
    if (count_ > 0) {
      const double avg_sigmoid = sum_sigmoid_ / count_, avg_ce = sum_ce_ / count_;
      double lam = lam_, lam2 = lam2_, in_w = in_w_, ce_w = ce_w_;
      const double in_term = avg_sigmoid - h_.false_alarm_cutoff;
      if (in_term * in_w + lam >= 0)
        lam += h_.lr_lam * in_term;
      else
        lam += -h_.lr_lam * lam / in_w;
      const double ce_term = avg_ce - h_.ce_tol * h_.full_train_loss;
      if (ce_term * ce_w + lam2 >= 0)
        lam2 += h_.lr_lam * ce_term;
      else
        lam2 += -h_.lr_lam * lam2 / ce_w;
      if (in_term > h_.constraint_tol) in_w *= h_.penalty_mult;
      if (ce_term > h_.constraint_tol) ce_w *= h_.penalty_mult;
      lam_ = static_cast<float>(lam);
      lam2_ = static_cast<float>(lam2);
      in_w_ = static_cast<float>(in_w);
      ce_w_ = static_cast<float>(ce_w);
    }
    reset_stats();
  }

  void reset_stats() {
    sum_sigmoid_ = sum_ce_ = count_ = 0;
    batches_ = 0;
  }

  void create(at::Device device) {
    // nn.Linear(1, 1): weight and bias uniform in [-1, 1).
    at::Generator gen = ood::make_generator(seed_);
    weight_ = at::empty({1, 1}, at::kFloat).uniform_(-1.0, 1.0, gen).to(device).requires_grad_(true);
    bias_ = at::empty({1}, at::kFloat).uniform_(-1.0, 1.0, gen).to(device).requires_grad_(true);
  }

  Hyper h_;
  std::optional<int64_t> update_every_;
  std::uint64_t seed_;
  at::Tensor weight_, bias_;
  float in_w_, ce_w_, lam_, lam2_;  // float32 numbers, as pytorch-ood's tensors
  double sum_sigmoid_ = 0, sum_ce_ = 0, count_ = 0;
  int64_t batches_ = 0;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "SCONE energy-margin loss: augmented Lagrangian over cross-entropy, IN and OOD energy constraints";
  info.paper = "Bai, Canal, Du, Kwon, Nowak & Li, Feed Two Birds with One Scone: Exploiting Wild Data for Both "
               "Out-of-Distribution Generalization and Detection, ICML";
  info.year = 2023;
  info.doc =
      "e_in = mean_IN sigmoid(lr(logsumexp z)), e_out = mean_OOD sigmoid(-lr(logsumexp z - eta)),\n"
      "ce = mean_IN cross-entropy, pen(t, lam, w) = t lam + w/2 t^2 if w t + lam >= 0 else -lam^2/(2w);\n"
      "loss = pen(ce - ce_tol * full_train_loss, lam2, ce_constraint_weight) + out_constraint_weight * e_out\n"
      "       + pen(e_in - false_alarm_cutoff, lam, in_constraint_weight).\n"
      "lr = a logistic regression Linear(1, 1) owned by the loss (learned with the model; checkpoint\n"
      "entries loss.logistic_regression.weight / .bias). lam, lam2 (initial values `lam`, `lam2`, 0 in\n"
      "pytorch-ood) and the penalty weights are state. Matches pytorch_ood.loss.EnergyMarginLoss.forward.\n"
      "Differences: pytorch-ood's update_hyperparameters needs CUDA (it calls .cuda()); here the same\n"
      "ALM update runs on any device, after every `update_every` training batches (absent: never),\n"
      "on the averages of the IN samples' sigmoid energies and cross-entropies of those batches\n"
      "(pytorch-ood re-evaluates the whole IN training set after each epoch). A batch without\n"
      "IN samples contributes no ce / e_in terms, one without outliers no e_out term (pytorch-ood:\n"
      "NaN). Classification only. Hyperparameters are float32 numbers, as in pytorch-ood.";
  info.params = {
      ood::ParamSpec::real("full_train_loss", "average cross-entropy of the pre-trained model on the IN training set"),
      ood::ParamSpec::real("eta", "energy margin between IN and OOD").default_value(1.0),
      ood::ParamSpec::real("false_alarm_cutoff", "allowed IN false-alarm rate").default_value(0.05),
      ood::ParamSpec::real("in_constraint_weight", "penalty weight of the IN constraint").default_value(1.0).min(0.0, true),
      ood::ParamSpec::real("ce_tol", "tolerated factor on full_train_loss").default_value(2.0),
      ood::ParamSpec::real("ce_constraint_weight", "penalty weight of the cross-entropy constraint")
          .default_value(1.0)
          .min(0.0, true),
      ood::ParamSpec::real("out_constraint_weight", "weight of the OOD energy term").default_value(1.0),
      ood::ParamSpec::real("lr_lam", "learning rate of the Lagrange multipliers").default_value(1.0),
      ood::ParamSpec::real("penalty_mult", "factor applied to a penalty weight whose constraint is violated")
          .default_value(1.5),
      ood::ParamSpec::real("constraint_tol", "constraint tolerance").default_value(0.0),
      ood::ParamSpec::real("lam", "initial Lagrange multiplier of the IN constraint").default_value(0.0),
      ood::ParamSpec::real("lam2", "initial Lagrange multiplier of the cross-entropy constraint").default_value(0.0),
      ood::ParamSpec::integer("update_every", "training batches between two multiplier updates (absent: never)")
          .optional()
          .min(1)};
  registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
    auto f = [&](const char* name) { return static_cast<float>(p.get_float(name)); };
    Hyper h{f("full_train_loss"), f("eta"),    f("false_alarm_cutoff"), f("ce_tol"),
            f("out_constraint_weight"), f("lr_lam"), f("penalty_mult"),   f("constraint_tol")};
    std::optional<int64_t> every;
    if (p.has("update_every")) every = p.get_int("update_every");
    return std::make_shared<EnergyMargin>(h, f("in_constraint_weight"), f("ce_constraint_weight"), f("lam"), f("lam2"),
                                          every,
                                          ood::component_seed(p, ctx, "energy-margin"));
  });
}

}  // namespace

OOD_PLUGIN("energy-margin", "SCONE energy-margin loss", register_components)
