// temperature-scaling: T = the NLL minimiser of the fit logits (POLICY.md), not
// pytorch-ood's early-stopped L-BFGS result.
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_ts() {
  static const auto d = load_tensor_dict_file("reference/detectors/temperature_scaling.pt");
  return d;
}

at::Tensor data(const std::string& key) { return tensor_of(reference_data(), key); }
double fixture_value(const std::string& key) { return tensor_of(fixture_ts(), key).item<double>(); }

std::shared_ptr<Detector> fitted(const at::Tensor& logits, const at::Tensor& labels, std::int64_t batch = 32) {
  auto det = make_detector("temperature-scaling");
  fit_on_views(*det, at::Tensor(), logits, labels, batch);
  return det;
}

double temperature(const Detector& det) { return det.state().at("temperature").item<double>(); }

double nll(const at::Tensor& logits, const at::Tensor& y, double t) {
  const at::Tensor lp = at::log_softmax(logits.to(at::kDouble) / t, 1);
  return -lp.gather(1, y.unsqueeze(1)).mean().item<double>();
}

TEST(TemperatureScaling, FitsTheNllMinimiser) {
  const double t_min = fixture_value("t_nll_minimiser_f64");
  auto det64 = fitted(data("logits_fit_f64"), data("y_fit"));
  EXPECT_NEAR(temperature(*det64), t_min, 1e-7 * t_min);
  // float32 fit logits: the same up to their rounding.
  auto det = fitted(data("logits_fit"), data("y_fit"), 17);
  EXPECT_NEAR(temperature(*det), t_min, 1e-5 * t_min);
  // It is a minimum: the NLL is larger on both sides.
  const double t = temperature(*det64);
  const at::Tensor l = data("logits_fit_f64"), y = data("y_fit");
  EXPECT_LT(nll(l, y, t), nll(l, y, t * (1 + 1e-4)));
  EXPECT_LT(nll(l, y, t), nll(l, y, t * (1 - 1e-4)));
  EXPECT_LT(nll(l, y, t), tensor_of(fixture_ts(), "nll_after").item<double>());
}

TEST(TemperatureScaling, ScoresAreMspAtTheFittedTemperatureNotPytorchOods) {
  auto det = fitted(data("logits_fit_f64"), data("y_fit"));
  const double t = temperature(*det);
  const double t_lbfgs = fixture_value("t_fitted");
  // pytorch-ood's early-stopped L-BFGS temperature is not reproduced (beyond its rtol 5e-3).
  EXPECT_GT(std::fabs(t - t_lbfgs), 0.1 * t_lbfgs);
  for (const std::string side : {"in", "out"}) {
    const at::Tensor l = data("logits_" + side + "_f64");
    const at::Tensor s = score_logits(*det, l);
    const at::Tensor expected = -std::get<0>(at::softmax(l / fixture_value("t_nll_minimiser_f64"), 1).max(1));
    EXPECT_TRUE(all_close(s, expected, 1e-7, 1e-9)) << side;
    // ... and the scores of pytorch-ood's temperature are not reproduced.
    EXPECT_GT((s - tensor_of(fixture_ts(), "scores_" + side + "_f64")).abs().max().item<double>(), 5e-3) << side;
    // With pytorch-ood's temperature stored as the state, its float64 scores come back exactly.
    auto loaded = make_detector("temperature-scaling");
    TensorDict st;
    st.set("temperature", at::scalar_tensor(fixture_value("t_fitted_f64"), at::kDouble));
    loaded->load_state(st);
    EXPECT_TRUE(all_close(score_logits(*loaded, l), tensor_of(fixture_ts(), "scores_" + side + "_f64"), 1e-10, 1e-12));
    // float32 logits give float32 scores.
    EXPECT_EQ(score_logits(*det, data("logits_" + side)).scalar_type(), at::kFloat);
  }
}

TEST(TemperatureScaling, RecoversAKnownTemperatureOnOtherData) {
  // Labels drawn from softmax(z / 2.5): the NLL minimiser of the logits z tends to T = 2.5.
  at::manual_seed(11);
  const int64_t n = 8000, c = 7;
  const at::Tensor z = at::randn({n, c}, at::kDouble) * 4;
  const at::Tensor y = at::multinomial(at::softmax(z / 2.5, 1), 1).view({-1});
  auto det = fitted(z, y, 1000);
  EXPECT_NEAR(temperature(*det), 2.5, 0.1);
  // Compare with a brute-force scan of the NLL.
  double best = 0, best_nll = INFINITY;
  for (double t = 2.2; t <= 2.8; t += 2e-3)
    if (const double v = nll(z, y, t); v < best_nll) best_nll = v, best = t;
  EXPECT_NEAR(temperature(*det), best, 2.5e-3);
  // OOD-labelled fit samples are ignored.
  at::Tensor y2 = y.clone();
  y2.slice(0, 0, 2000).fill_(-1);
  auto part = fitted(z, y2, 1000);
  auto ref = fitted(z.slice(0, 2000), y.slice(0, 2000), 999);
  EXPECT_NEAR(temperature(*part), temperature(*ref), 1e-12);
}

TEST(TemperatureScaling, DegenerateFitSetsGiveAFiniteTemperature) {
  // Every fit sample correct with a margin: the NLL decreases towards T = 0: clamped.
  const at::Tensor l = at::eye(3, at::kDouble) * 5;
  auto det = fitted(l, at::arange(3, at::kLong));
  EXPECT_TRUE(std::isfinite(temperature(*det)));
  EXPECT_GT(temperature(*det), 0);
  EXPECT_FALSE(at::isnan(score_logits(*det, at::randn({4, 3}))).any().item<bool>());
}

TEST(TemperatureScaling, StateRoundTripIsBitIdentical) {
  auto det = fitted(data("logits_fit"), data("y_fit"));
  auto fresh = make_detector("temperature-scaling");
  fresh->attach(*reference_model());
  fresh->load_state(det->state());
  for (const std::string side : {"in", "out"})
    EXPECT_TRUE(at::equal(score_logits(*fresh, data("logits_" + side)), score_logits(*det, data("logits_" + side))));
}

TEST(TemperatureScaling, ErrorsBeforeFittingAndOnBadStateOrInput) {
  auto det = make_detector("temperature-scaling");
  EXPECT_TRUE(det->needs().fit_labels);
  try {
    score_logits(*det, data("logits_in"));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("temperature-scaling: not fitted"), std::string::npos) << e.what();
  }
  EXPECT_THROW(det->finish_fit(), StateError);
  EXPECT_THROW(det->load_state(TensorDict()), StateError);
  TensorDict bad;
  bad.set("temperature", at::scalar_tensor(-1.0, at::kDouble));
  EXPECT_THROW(det->load_state(bad), StateError);
  bad.set("temperature", at::ones({2}, at::kDouble));
  EXPECT_THROW(det->load_state(bad), StateError);
  bad.set("temperature", at::scalar_tensor(1.0, at::kDouble));
  bad.set("t2", at::scalar_tensor(1.0, at::kDouble));
  EXPECT_THROW(det->load_state(bad), StateError);
  EXPECT_THROW(make_detector("temperature-scaling", R"({"t": 1})"), InvalidArgument);
  auto fit = fitted(data("logits_fit"), data("y_fit"));
  EXPECT_THROW(score_logits(*fit, at::ones({4})), ShapeError);
  EXPECT_THROW(score_logits(*fit, at::ones({4, 10}, at::kLong)), ShapeError);
  EXPECT_THROW(fit_on_views(*make_detector("temperature-scaling"), at::Tensor(), data("logits_fit"), data("y_fit") + 10),
               ShapeError);
}

}  // namespace
}  // namespace ood::test
