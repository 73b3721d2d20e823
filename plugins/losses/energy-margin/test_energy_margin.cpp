// energy-margin against pytorch-ood's EnergyMarginLoss (SCONE)
// (tests/fixtures/reference/losses/energy_margin.json): every case, values and gradients
// w.r.t. the logits and the logistic regression, float32 and float64; the multiplier
// update on the CPU; the state round trip; bad targets.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

struct EmRun {
  at::Tensor value, grad_logits, grad_w, grad_b;
};

EmRun em_run(Loss& loss, const at::Tensor& logits_in, const at::Tensor& y, bool backward = true) {
  at::Tensor logits = logits_in.detach().clone().requires_grad_(true);
  Views views;
  views.set_logits(logits);
  auto params = loss.parameters();
  for (auto& p : params)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  at::Tensor v = loss.forward(views, y);
  EmRun r{v.detach(), {}, {}, {}};
  if (backward) {
    v.backward();
    r.grad_logits = logits.grad();
    r.grad_w = params[0].grad();
    r.grad_b = params[1].grad();
  }
  return r;
}

TensorDict em_state(const at::Tensor& w, const at::Tensor& b, double lam = 0, double lam2 = 0, double in_w = 1,
                    double ce_w = 1) {
  TensorDict s;
  s.set("logistic_regression.weight", w);
  s.set("logistic_regression.bias", b);
  s.set("lam", at::scalar_tensor(lam, at::kDouble));
  s.set("lam2", at::scalar_tensor(lam2, at::kDouble));
  s.set("in_constraint_weight", at::scalar_tensor(in_w, at::kDouble));
  s.set("ce_constraint_weight", at::scalar_tensor(ce_w, at::kDouble));
  s.set("update_stats", at::zeros({4}, at::kDouble));
  return s;
}

TEST(EnergyMargin, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/energy_margin.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/energy_margin.json")));
  ASSERT_EQ(meta["cases"].size(), 4u);
  const at::Tensor logits = tensor_of(fx, "inputs_logits");
  const at::Tensor y = tensor_of(fx, "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>() && (y >= 0).any().item<bool>());
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    nlohmann::json params = c["constructor"];
    if (params.contains("attributes_set_after_construction")) {
      for (const auto& [k, v] : params["attributes_set_after_construction"].items()) params[k] = v;
      params.erase("attributes_set_after_construction");
    }
    for (const bool f64 : {false, true}) {
      auto loss = make_loss("energy-margin", params.dump());
      const auto dt = f64 ? at::kDouble : at::kFloat;
      TensorDict st = em_state(tensor_of(fx, "logistic_regression_weight").to(dt),
                               tensor_of(fx, "logistic_regression_bias").to(dt), params.value("lam", 0.0),
                               params.value("lam2", 0.0), params.value("in_constraint_weight", 1.0),
                               params.value("ce_constraint_weight", 1.0));
      loss->load_state(st);
      const EmRun r = em_run(*loss, logits.to(dt), y);
      const std::string sfx = f64 ? "_f64" : "";
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      EXPECT_TRUE(all_close(r.value, tensor_of(fx, key + "_value" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad_logits, tensor_of(fx, key + "_grad_logits" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad_w, tensor_of(fx, key + "_grad_param_lr_weight" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad_b, tensor_of(fx, key + "_grad_param_lr_bias" + sfx), rtol, atol)) << key << sfx;
    }
  }
}

TEST(EnergyMargin, GradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(13);
  const at::Tensor logits = at::randn({7, 3}, at::kDouble) * 2;
  const at::Tensor y = at::tensor({0, -1, 2, -1, 1, 2, -1}, at::kLong);
  const std::string params = R"({"full_train_loss": 0.2, "eta": 0.5, "lam": 0.1, "lam2": 0.2})";
  const at::Tensor w0 = at::tensor({0.3}, at::kDouble).view({1, 1}), b0 = at::tensor({-0.2}, at::kDouble);
  auto value_at = [&](const at::Tensor& z, const at::Tensor& w, const at::Tensor& b) {
    auto l = make_loss("energy-margin", params);
    l->load_state(em_state(w, b, 0.1, 0.2));
    return em_run(*l, z, y, false).value.item<double>();
  };
  auto loss = make_loss("energy-margin", params);
  loss->load_state(em_state(w0, b0, 0.1, 0.2));
  const EmRun r = em_run(*loss, logits, y);
  const double h = 1e-6;
  for (int64_t i = 0; i < logits.numel(); ++i) {
    at::Tensor up = logits.clone(), dn = logits.clone();
    up.view(-1)[i] += h;
    dn.view(-1)[i] -= h;
    EXPECT_NEAR(r.grad_logits.view(-1)[i].item<double>(), (value_at(up, w0, b0) - value_at(dn, w0, b0)) / (2 * h), 1e-7);
  }
  EXPECT_NEAR(r.grad_w.item<double>(), (value_at(logits, w0 + h, b0) - value_at(logits, w0 - h, b0)) / (2 * h), 1e-7);
  EXPECT_NEAR(r.grad_b.item<double>(), (value_at(logits, w0, b0 + h) - value_at(logits, w0, b0 - h)) / (2 * h), 1e-7);
}

TEST(EnergyMargin, MultiplierUpdateRunsOnTheCpu) {
  // update_every 1: after one training batch, pytorch-ood's update_hyperparameters with the
  // batch's IN averages (hand-computed here).
  const at::Tensor logits = at::tensor({2.0, 0.0, 0.0, 1.0, 0.5, 0.5}, at::kDouble).view({3, 2});
  const at::Tensor y = at::tensor({0, 1, -1}, at::kLong);
  auto loss = make_loss("energy-margin", R"({"full_train_loss": 0.1, "update_every": 1, "lam": 0.05})");
  const at::Tensor w = at::tensor({0.5}, at::kDouble).view({1, 1}), b = at::tensor({0.1}, at::kDouble);
  loss->load_state(em_state(w, b, 0.05, 0.0));
  em_run(*loss, logits, y);
  const at::Tensor lse = at::logsumexp(logits.slice(0, 0, 2), {1});
  const double avg_sig = at::sigmoid(0.5 * lse + 0.1).mean().item<double>();
  const double avg_ce = (lse - at::tensor({2.0, 1.0}, at::kDouble)).mean().item<double>();
  const double in_term = avg_sig - 0.05, ce_term = avg_ce - 2.0 * 0.1;
  ASSERT_GT(in_term * 1.0 + 0.05, 0.0);
  ASSERT_GT(ce_term, 0.0);
  const TensorDict s = loss->state();
  // The multipliers are float32 numbers, as pytorch-ood's.
  EXPECT_NEAR(s.at("lam").item<double>(), 0.05 + in_term, 1e-7);
  EXPECT_NEAR(s.at("lam2").item<double>(), ce_term, 1e-7);
  EXPECT_EQ(s.at("in_constraint_weight").item<double>(), 1.5);
  EXPECT_EQ(s.at("ce_constraint_weight").item<double>(), 1.5);
  // Without update_every the multipliers stay.
  auto fixed = make_loss("energy-margin", R"({"full_train_loss": 0.1, "lam": 0.05})");
  fixed->load_state(em_state(w, b, 0.05, 0.0));
  em_run(*fixed, logits, y);
  EXPECT_EQ(fixed->state().at("lam").item<double>(), static_cast<double>(0.05f));
  // No update under NoGradGuard (evaluation).
  auto eval = make_loss("energy-margin", R"({"full_train_loss": 0.1, "update_every": 1})");
  eval->load_state(em_state(w, b));
  {
    at::NoGradGuard ng;
    Views v;
    v.set_logits(logits);
    eval->forward(v, y);
  }
  EXPECT_EQ(eval->state().at("lam").item<double>(), 0.0);
}

TEST(EnergyMargin, StateRoundTripAndParameters) {
  auto loss = make_loss("energy-margin", R"({"full_train_loss": 0.3})");
  auto params = loss->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_TRUE(params[0].requires_grad());
  EXPECT_LE(params[0].abs().item<double>(), 1.0);
  const TensorDict s = loss->state();
  auto other = make_loss("energy-margin", R"({"full_train_loss": 0.3})");
  other->load_state(s);
  EXPECT_TRUE(at::equal(other->state().at("logistic_regression.weight"), s.at("logistic_regression.weight")));
  EXPECT_TRUE(at::equal(other->state().at("logistic_regression.bias"), s.at("logistic_regression.bias")));
  TensorDict bad = s;
  bad.set("logistic_regression.weight", at::zeros({2, 1}));
  EXPECT_THROW(other->load_state(bad), StateError);
  TensorDict missing = s;
  missing.erase("lam");
  EXPECT_THROW(other->load_state(missing), StateError);
}

TEST(EnergyMargin, RefusesBadTargets) {
  auto loss = make_loss("energy-margin", R"({"full_train_loss": 0.3})");
  EXPECT_THROW(em_run(*loss, at::randn({4, 3}), at::zeros({4}), false), ShapeError);
  EXPECT_THROW(em_run(*loss, at::randn({4, 3}), at::zeros({5}, at::kLong), false), ShapeError);
  EXPECT_THROW(em_run(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), false), ShapeError);
  EXPECT_THROW(em_run(*loss, at::randn({2, 3, 2, 2}), at::zeros({2, 2, 2}, at::kLong), false), ShapeError);
  EXPECT_THROW(make_loss("energy-margin"), InvalidArgument);  // full_train_loss is required
  // A batch without outliers or without IN samples stays finite.
  EXPECT_TRUE(std::isfinite(em_run(*loss, at::randn({3, 3}), at::tensor({0, 1, 2}, at::kLong), false).value.item<double>()));
  EXPECT_TRUE(std::isfinite(em_run(*loss, at::randn({3, 3}), at::full({3}, -1, at::kLong), false).value.item<double>()));
}

}  // namespace
}  // namespace ood::test
