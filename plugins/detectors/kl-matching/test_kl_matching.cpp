// kl-matching: parity with pytorch-ood's KLMatching for fit_on "labels", and the
// paper's templates per predicted class (the default, POLICY.md).
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_kl() {
  static const auto d = load_tensor_dict_file("reference/detectors/klmatching.pt");
  return d;
}

at::Tensor data(const std::string& key) { return tensor_of(reference_data(), key); }

std::shared_ptr<Detector> fitted(const std::string& params, const at::Tensor& logits, const at::Tensor& labels,
                                 std::int64_t batch = 32) {
  auto det = make_detector("kl-matching", params);
  fit_on_views(*det, at::Tensor(), logits, labels, batch);
  return det;
}

// The definition in float64 with plain loops: templates per `assign`, KL to the template
// of the predicted class.
at::Tensor definition_scores(const at::Tensor& fit_logits, const at::Tensor& assign, const at::Tensor& logits) {
  const at::Tensor pf = at::softmax(fit_logits.to(at::kDouble), 1);
  const int64_t c = pf.size(1);
  at::Tensor t = at::zeros({c, c}, at::kDouble);
  std::vector<double> n(c, 0.0);
  for (int64_t i = 0; i < pf.size(0); ++i) {
    const int64_t k = assign[i].item<int64_t>();
    if (k < 0) continue;
    t[k] += pf[i];
    n[k] += 1;
  }
  for (int64_t k = 0; k < c; ++k) t[k] /= n[k];
  const at::Tensor p = at::softmax(logits.to(at::kDouble), 1);
  at::Tensor out = at::empty({p.size(0)}, at::kDouble);
  for (int64_t i = 0; i < p.size(0); ++i) {
    const int64_t k = p[i].argmax().item<int64_t>();
    double s = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double pj = p[i][j].item<double>();
      if (pj > 0) s += pj * std::log(pj / t[k][j].item<double>());
    }
    out[i] = s;
  }
  return out;
}

TEST(KlMatching, LabelsModeMatchesPytorchOod) {
  auto det = fitted(R"({"fit_on": "labels"})", data("logits_fit"), data("y_fit"));
  EXPECT_TRUE(det->needs().fit_labels);
  EXPECT_TRUE(all_close(det->state().at("dists"), tensor_of(fixture_kl(), "dists").to(at::kDouble), 1e-5, 1e-6));
  for (const std::string side : {"in", "out"})
    EXPECT_TRUE(all_close(score_logits(*det, data("logits_" + side)), tensor_of(fixture_kl(), "scores_" + side), 1e-4,
                          1e-4))
        << side;
  // Fitted and scored in float64: the float64 recomputation.
  auto det64 = fitted(R"({"fit_on": "labels"})", data("logits_fit_f64"), data("y_fit"));
  EXPECT_TRUE(all_close(det64->state().at("dists"), tensor_of(fixture_kl(), "dists_f64"), 1e-12, 1e-14));
  for (const std::string side : {"in", "out"})
    EXPECT_TRUE(all_close(score_logits(*det64, data("logits_" + side + "_f64")),
                          tensor_of(fixture_kl(), "scores_" + side + "_f64"), 1e-10, 1e-12))
        << side;
}

TEST(KlMatching, PredictedModeIsTheDefinitionAndNotPytorchOod) {
  auto det = fitted("{}", data("logits_fit_f64"), data("y_fit"));
  EXPECT_FALSE(det->needs().fit_labels);
  const at::Tensor pred = data("logits_fit_f64").argmax(1);
  ASSERT_TRUE((pred != data("y_fit")).any().item<bool>());  // the fixture tells the two apart
  for (const std::string side : {"in", "out"}) {
    const at::Tensor l = data("logits_" + side + "_f64");
    const at::Tensor s = score_logits(*det, l);
    EXPECT_TRUE(all_close(s, definition_scores(data("logits_fit_f64"), pred, l), 1e-10, 1e-12)) << side;
    // pytorch-ood's label templates are not what the default computes.
    EXPECT_GT((s - tensor_of(fixture_kl(), "scores_" + side + "_f64")).abs().max().item<double>(), 1e-3) << side;
  }
  // The label values are not used, but OOD-labelled (negative) fit samples are skipped.
  at::Tensor y = data("y_fit").clone();
  y.slice(0, 0, 20).fill_(-1);
  auto det2 = fitted("{}", data("logits_fit_f64"), y);
  at::Tensor assign = pred.clone();
  assign.slice(0, 0, 20).fill_(-1);
  EXPECT_TRUE(all_close(score_logits(*det2, data("logits_in_f64")),
                        definition_scores(data("logits_fit_f64"), assign, data("logits_in_f64")), 1e-10, 1e-12));
}

TEST(KlMatching, FloatPipelineMatchesTheDefinition) {
  auto det = fitted("{}", data("logits_fit"), data("y_fit"), 17);
  const at::Tensor s = score_logits(*det, data("logits_out"));
  EXPECT_EQ(s.scalar_type(), at::kFloat);
  EXPECT_TRUE(all_close(s.to(at::kDouble),
                        definition_scores(data("logits_fit_f64"), data("logits_fit_f64").argmax(1),
                                          data("logits_out_f64")),
                        1e-4, 1e-4));
}

TEST(KlMatching, OtherClassCountsAndBatchSizes) {
  at::manual_seed(3);
  const at::Tensor fit = at::randn({300, 4}, at::kDouble) * 3;
  const at::Tensor y = at::randint(0, 4, {300}, at::kLong);
  const at::Tensor test = at::randn({50, 4}, at::kDouble) * 3;
  for (const std::string mode : {"predicted", "labels"}) {
    auto a = fitted(R"({"fit_on": ")" + mode + R"("})", fit, y, 300);
    auto b = fitted(R"({"fit_on": ")" + mode + R"("})", fit, y, 7);
    const at::Tensor expected = definition_scores(fit, mode == "labels" ? y : fit.argmax(1), test);
    EXPECT_TRUE(all_close(score_logits(*a, test), expected, 1e-10, 1e-12)) << mode;
    EXPECT_TRUE(all_close(score_logits(*b, test), expected, 1e-10, 1e-12)) << mode;
    // The KL divergence is >= 0, and 0 for the template itself.
    EXPECT_TRUE((score_logits(*a, test) >= -1e-12).all().item<bool>());
  }
  // Extreme logits: never NaN.
  auto det = fitted("{}", fit, y);
  const at::Tensor extreme = at::tensor({1000.0, -1000.0, 0.0, 0.0, -800.0, 900.0, 1.0, 2.0}, at::kDouble).view({2, 4});
  EXPECT_FALSE(at::isnan(score_logits(*det, extreme)).any().item<bool>());
}

TEST(KlMatching, ClassWithoutFitSamplesFallsBackToTheMeanPosterior) {
  const at::Tensor fit = at::tensor({5.0, 0.0, 0.0, 4.0, 1.0, 0.0, 0.0, 6.0, 0.0}, at::kDouble).view({3, 3});
  const at::Tensor y = at::tensor({0, 0, 1}, at::kLong);
  auto det = fitted("{}", fit, y);  // class 2 is never predicted
  const at::Tensor d = det->state().at("dists");
  EXPECT_TRUE(all_close(d[2], at::softmax(fit, 1).mean(0), 1e-14, 1e-15));
  EXPECT_TRUE(at::isfinite(score_logits(*det, at::tensor({0.0, 0.0, 9.0}, at::kDouble).view({1, 3}))).all().item<bool>());
}

TEST(KlMatching, StateRoundTripIsBitIdentical) {
  for (const std::string mode : {"predicted", "labels"}) {
    auto det = fitted(R"({"fit_on": ")" + mode + R"("})", data("logits_fit"), data("y_fit"));
    auto fresh = make_detector("kl-matching", R"({"fit_on": ")" + mode + R"("})");
    fresh->attach(*reference_model());
    fresh->load_state(det->state());
    EXPECT_TRUE(fresh->is_fitted());
    for (const std::string side : {"in", "out"})
      EXPECT_TRUE(at::equal(score_logits(*fresh, data("logits_" + side)), score_logits(*det, data("logits_" + side))));
  }
}

TEST(KlMatching, ScoringBeforeFittingIsAnError) {
  auto det = make_detector("kl-matching");
  EXPECT_FALSE(det->is_fitted());
  try {
    score_logits(*det, data("logits_in"));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("kl-matching: not fitted"), std::string::npos) << e.what();
  }
  EXPECT_THROW(det->finish_fit(), StateError);  // no fit sample
}

TEST(KlMatching, RefusesBadState) {
  auto det = fitted("{}", data("logits_fit"), data("y_fit"));
  const TensorDict good = det->state();
  auto fresh = [] {
    auto d = make_detector("kl-matching");
    d->attach(*reference_model());
    return d;
  };
  TensorDict missing;
  missing.set("dists", good.at("dists"));
  EXPECT_THROW(fresh()->load_state(missing), StateError);
  TensorDict unknown = good;
  unknown.set("extra", at::zeros({1}));
  EXPECT_THROW(fresh()->load_state(unknown), StateError);
  TensorDict shape = good;
  shape.set("dists", at::zeros({10, 9}, at::kDouble));
  EXPECT_THROW(fresh()->load_state(shape), StateError);
  TensorDict counts = good;
  counts.set("counts", at::zeros({9}, at::kLong));
  EXPECT_THROW(fresh()->load_state(counts), StateError);
  TensorDict other_model;  // fitted for 4 classes, the model has 10
  other_model.set("dists", at::full({4, 4}, 0.25, at::kDouble));
  other_model.set("counts", at::ones({4}, at::kLong));
  EXPECT_THROW(fresh()->load_state(other_model), StateError);
  EXPECT_NO_THROW(make_detector("kl-matching")->load_state(other_model));  // unattached: any size
  EXPECT_THROW(fresh()->load_state(TensorDict()), StateError);
}

TEST(KlMatching, RefusesBadParametersAndInputs) {
  EXPECT_THROW(make_detector("kl-matching", R"({"fit_on": "label"})"), InvalidArgument);
  EXPECT_THROW(make_detector("kl-matching", R"({"k": 1})"), InvalidArgument);
  auto det = fitted("{}", data("logits_fit"), data("y_fit"));
  EXPECT_THROW(score_logits(*det, at::ones({4})), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({4, 10}, at::kLong)), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({4, 9})), ShapeError);
  auto lab = make_detector("kl-matching", R"({"fit_on": "labels"})");
  EXPECT_THROW(fit_on_views(*lab, at::Tensor(), data("logits_fit"), data("y_fit") + 5), ShapeError);
}

}  // namespace
}  // namespace ood::test
