// openmax: parity with pytorch-ood's OpenMax (centres, Weibull tails) and the definition
// of POLICY.md: exact-MLE Weibull parameters, batch-independent distances.
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_om() {
  static const auto d = load_tensor_dict_file("reference/detectors/openmax.pt");
  return d;
}

at::Tensor data(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fx(const std::string& key) { return tensor_of(fixture_om(), key); }

const char* kParams = R"({"tailsize": 10, "alpha": 4, "euclid_weight": 1.0})";

std::shared_ptr<Detector> fitted(const std::string& params, const at::Tensor& logits, const at::Tensor& labels,
                                 std::int64_t batch = 32) {
  auto det = make_detector("openmax", params);
  fit_on_views(*det, at::Tensor(), logits, labels, batch);
  return det;
}

// OpenMax's unknown-class probability by its definition, one sample at a time, from
// given centres and Weibull parameters (float64, plain loops).
at::Tensor definition_scores(const at::Tensor& logits, const at::Tensor& centers, const at::Tensor& shape,
                             const at::Tensor& scale, const at::Tensor& min_val, int64_t alpha, double ew) {
  const at::Tensor l = logits.to(at::kDouble);
  const int64_t n = l.size(0), c = l.size(1);
  alpha = std::min(alpha, c);
  at::Tensor out = at::empty({n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor order = at::argsort(l[i], 0, /*descending=*/true);
    std::vector<double> w(c, 1.0);
    for (int64_t r = 0; r < alpha; ++r) {
      const int64_t k = order[r].item<int64_t>();
      const at::Tensor m = centers[k].to(at::kDouble);
      double d = ew * (l[i] - m).norm().item<double>();
      if (ew != 1)
        d += (1 - ew) * (1 - (l[i] * m).sum().item<double>() / (l[i].norm().item<double>() * m.norm().item<double>()));
      const double x = d + 10000 - min_val[k].item<double>();
      const double cdf = x <= 0 ? 0 : 1 - std::exp(-std::pow(x / scale[k].item<double>(), shape[k].item<double>()));
      w[k] = 1 - cdf * double(alpha - r) / double(alpha);
    }
    std::vector<double> act(c + 1);
    act[0] = 0;
    for (int64_t k = 0; k < c; ++k) {
      const double v = l[i][k].item<double>();
      act[k + 1] = v * w[k];
      act[0] += v * (1 - w[k]);
    }
    const double mx = *std::max_element(act.begin(), act.end());
    double sum = 0;
    for (double a : act) sum += std::exp(a - mx);
    out[i] = std::exp(act[0] - mx) / sum;
  }
  return out;
}

TEST(OpenMax, FittedStateMatchesPytorchOodAndTheExactMle) {
  auto det = fitted(kParams, data("logits_fit"), data("y_fit"));
  const TensorDict s = det->state();
  EXPECT_TRUE(all_close(s.at("centers"), fx("centers").to(at::kDouble), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(s.at("weibull_min_val"), fx("weibull_min_val"), 1e-5, 1e-6));
  // Against scipy's Nelder-Mead fit (the fixture's tolerance) ...
  EXPECT_TRUE(all_close(s.at("weibull_shape"), fx("weibull_c"), 2e-3, 0));
  EXPECT_TRUE(all_close(s.at("weibull_scale"), fx("weibull_scale"), 1e-4, 0));
  // ... and, much tighter, against the exact MLE (the target, POLICY.md). The remaining
  // difference comes from pytorch-ood's float32 distances.
  EXPECT_TRUE(all_close(s.at("weibull_shape"), fx("weibull_c_exact_mle"), 2e-5, 0));
  EXPECT_TRUE(all_close(s.at("weibull_scale"), fx("weibull_scale_exact_mle"), 1e-7, 0));
}

TEST(OpenMax, ScoresMatchPytorchOodWhereItIsBatchIndependent) {
  auto det = fitted(kParams, data("logits_fit"), data("y_fit"));
  // Every class is the argmax of some 'in' sample, so pytorch-ood's batch artefact does
  // not show there: scores and the exact-MLE scores agree.
  const at::Tensor s_in = score_logits(*det, data("logits_in"));
  EXPECT_TRUE(all_close(s_in.to(at::kDouble), fx("scores_in"), 1e-3, 1e-4));
  EXPECT_TRUE(all_close(s_in.to(at::kDouble), fx("scores_exact_mle_in"), 1e-4, 1e-6));
}

TEST(OpenMax, ScoresAreTheDefinitionAndIndependentOfTheBatch) {
  auto det = fitted(kParams, data("logits_fit"), data("y_fit"));
  const TensorDict st = det->state();
  const at::Tensor all = at::cat({data("logits_in"), data("logits_out")});
  const at::Tensor together = score_logits(*det, all);
  const at::Tensor expected = definition_scores(all, st.at("centers"), st.at("weibull_shape"),
                                                st.at("weibull_scale"), st.at("weibull_min_val"), 4, 1.0);
  EXPECT_TRUE(all_close(together.to(at::kDouble), expected, 1e-5, 1e-7));
  // The same with the fixture's centres and exact-MLE Weibull parameters.
  const at::Tensor from_fixture = definition_scores(all, fx("centers"), fx("weibull_c_exact_mle"),
                                                    fx("weibull_scale_exact_mle"), fx("weibull_min_val"), 4, 1.0);
  EXPECT_TRUE(all_close(together.to(at::kDouble), from_fixture, 1e-4, 1e-6));
  // Batch composition does not matter: one sample at a time, the halves, a shuffle.
  EXPECT_TRUE(at::equal(at::cat({score_logits(*det, data("logits_in")), score_logits(*det, data("logits_out"))}),
                        together));
  for (int64_t i : {0, 70, 127})
    EXPECT_TRUE(all_close(score_logits(*det, all.slice(0, i, i + 1)), together.slice(0, i, i + 1), 1e-6, 1e-9));
  const at::Tensor perm = at::randperm(128, at::kLong);
  EXPECT_TRUE(all_close(score_logits(*det, all.index_select(0, perm)), together.index_select(0, perm), 1e-6, 1e-9));
  // pytorch-ood scored in+out as one batch, in which every class is some sample's argmax:
  // there it computes the definition, and ood matches it.
  EXPECT_TRUE(all_close(together.to(at::kDouble), fx("scores_in_out_batch"), 1e-3, 1e-4));
  // Its batch-dependent values are not reproduced: in the 'out' batch alone (which
  // predicts only classes 1 and 2) the distances to the other top classes count as 0.
  const at::Tensor out = together.slice(0, 64).to(at::kDouble);
  EXPECT_GT((out - fx("scores_out")).abs().max().item<double>(), 1e-2);
  EXPECT_TRUE(all_close(out, fx("scores_in_out_batch").slice(0, 64), 1e-3, 1e-4));
}

TEST(OpenMax, CosineWeightAlphaAndOtherData) {
  at::manual_seed(5);
  const int64_t c = 6;
  const at::Tensor y = at::arange(600, at::kLong).remainder(c);
  const at::Tensor fit = at::randn({600, c}, at::kDouble) + at::one_hot(y, c).to(at::kDouble) * 4;
  const at::Tensor test = at::randn({40, c}, at::kDouble) * 2;
  using Case = std::tuple<std::string, int64_t, double, int64_t>;  // params, alpha, euclid_weight, tailsize
  for (const auto& [params, alpha, ew, tailsize] :
       {Case{R"({"tailsize": 20, "alpha": 3, "euclid_weight": 0.4})", 3, 0.4, 20},
        Case{R"({"tailsize": 500, "alpha": 9, "euclid_weight": 0.0})", 9, 0.0, 500},
        Case{R"({"euclid_weight": 1.0})", 10, 1.0, 25}}) {
    auto det = fitted(params, fit, y, 64);
    const TensorDict st = det->state();
    EXPECT_TRUE(all_close(score_logits(*det, test),
                          definition_scores(test, st.at("centers"), st.at("weibull_shape"), st.at("weibull_scale"),
                                            st.at("weibull_min_val"), alpha, ew),
                          1e-9, 1e-12))
        << params;
    // The Weibull shape solves the likelihood equation: check the MLE conditions for
    // class 0 from its tail, recomputed here.
    const at::Tensor l0 = fit.index({y == 0});
    const at::Tensor m0 = l0.mean(0);
    at::Tensor d = ew * (l0 - m0).norm(2, {1});
    if (ew != 1) d = d + (1 - ew) * (1 - at::matmul(l0, m0) / (l0.norm(2, {1}) * m0.norm()));
    const int64_t tail = std::min<int64_t>(tailsize, d.size(0));  // 500 > the 100 samples: all of them
    const at::Tensor t = std::get<0>(d.sort()).slice(0, d.size(0) - tail);
    const at::Tensor x = t + 10000 - t.min();
    const double k = st.at("weibull_shape")[0].item<double>(), lam = st.at("weibull_scale")[0].item<double>();
    const at::Tensor r = at::log(x / x.max());
    const at::Tensor w = at::exp(k * r);
    const double g = ((w * r).sum() / w.sum()).item<double>() - 1 / k - r.mean().item<double>();
    EXPECT_NEAR(g * k, 0.0, 1e-9) << params;
    EXPECT_NEAR(lam, (x.max() * at::pow(w.mean(), 1 / k)).item<double>(), 1e-9 * lam) << params;
    EXPECT_TRUE(all_close(st.at("weibull_min_val")[0], t.min(), 1e-12, 1e-12));
  }
}

TEST(OpenMax, StateRoundTripIsBitIdentical) {
  auto det = fitted(kParams, data("logits_fit"), data("y_fit"));
  auto fresh = make_detector("openmax", kParams);
  fresh->attach(*reference_model());
  fresh->load_state(det->state());
  for (const std::string side : {"in", "out"})
    EXPECT_TRUE(at::equal(score_logits(*fresh, data("logits_" + side)), score_logits(*det, data("logits_" + side))));
}

TEST(OpenMax, ErrorsBeforeFittingOnBadStateParametersAndInputs) {
  auto det = make_detector("openmax", kParams);
  try {
    score_logits(*det, data("logits_in"));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("openmax: not fitted"), std::string::npos) << e.what();
  }
  EXPECT_THROW(det->finish_fit(), StateError);
  // A class without fit samples.
  at::Tensor y = data("y_fit").clone();
  y.masked_fill_(y == 3, -1);
  EXPECT_THROW(fitted(kParams, data("logits_fit"), y), StateError);
  // Bad states.
  const TensorDict good = fitted(kParams, data("logits_fit"), data("y_fit"))->state();
  auto fresh = [] {
    auto d = make_detector("openmax", kParams);
    d->attach(*reference_model());
    return d;
  };
  for (const char* key : {"centers", "weibull_shape", "weibull_scale", "weibull_min_val"}) {
    TensorDict missing;
    for (const auto& [k, v] : good)
      if (k != key) missing.set(k, v);
    EXPECT_THROW(fresh()->load_state(missing), StateError) << key;
    TensorDict wrong = good;
    wrong.set(key, at::zeros({3}, at::kDouble));
    EXPECT_THROW(fresh()->load_state(wrong), StateError) << key;
  }
  TensorDict extra = good;
  extra.set("alpha", at::zeros({1}));
  EXPECT_THROW(fresh()->load_state(extra), StateError);
  TensorDict small;  // 4 classes for a 10-class model
  small.set("centers", at::zeros({4, 4}, at::kDouble));
  for (const char* key : {"weibull_shape", "weibull_scale", "weibull_min_val"}) small.set(key, at::ones({4}, at::kDouble));
  EXPECT_THROW(fresh()->load_state(small), StateError);
  // Bad parameters.
  EXPECT_THROW(make_detector("openmax", R"({"tailsize": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("openmax", R"({"alpha": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("openmax", R"({"euclid_weight": 1.5})"), InvalidArgument);
  EXPECT_THROW(make_detector("openmax", R"({"euclid_weight": -0.1})"), InvalidArgument);
  EXPECT_THROW(make_detector("openmax", R"({"tail": 3})"), InvalidArgument);
  // Bad inputs.
  auto fit = fitted(kParams, data("logits_fit"), data("y_fit"));
  EXPECT_THROW(score_logits(*fit, at::ones({4})), ShapeError);
  EXPECT_THROW(score_logits(*fit, at::ones({4, 10}, at::kLong)), ShapeError);
  EXPECT_THROW(score_logits(*fit, at::ones({4, 11})), ShapeError);
  EXPECT_THROW(fitted(kParams, data("logits_fit"), data("y_fit") + 10), ShapeError);
}

}  // namespace
}  // namespace ood::test
