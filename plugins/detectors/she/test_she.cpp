// she: parity with pytorch-ood's SHE (tests/fixtures/reference/detectors/she.*), the
// fallback for classes without correctly classified samples (never NaN), and errors.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

#include <limits>

namespace ood::test {
namespace {

const auto& fixture_she() {
  static const auto d = load_tensor_dict_file("reference/detectors/she.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fix(const std::string& key) { return tensor_of(fixture_she(), key); }

std::shared_ptr<Detector> fitted_on_reference() {
  auto det = make_detector("she");
  fit_on_views(*det, rd("features_fit"), rd("logits_fit"), rd("y_fit"));
  return det;
}

at::Tensor rows(const std::vector<float>& v, std::int64_t cols) { return at::tensor(v).view({-1, cols}); }
at::Tensor labels(const std::vector<std::int64_t>& v) { return at::tensor(v); }

TEST(She, FittedStateMatchesPytorchOod) {
  const TensorDict state = fitted_on_reference()->state();
  EXPECT_TRUE(all_close(state.at("patterns"), fix("patterns"), 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(state.at("n_correct"), fix("n_correct_per_class")));
}

TEST(She, ScoresMatchPytorchOod) {
  auto det = fitted_on_reference();
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), rd(std::string("logits_") + side));
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side), 1e-4, 1e-4)) << side;
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side + "_f64"), 1e-4, 1e-4)) << side;
  }
}

TEST(She, ThroughTheModelMatchesPytorchOod) {
  auto det = make_detector("she");
  auto model = reference_model();
  fit_on_model(*det, *model, rd("x_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"})
    EXPECT_TRUE(all_close(score_on_model(*det, *model, rd(std::string("x_") + side)),
                          fix(std::string("scores_") + side), 1e-4, 1e-4))
        << side;
}

TEST(She, KnownAnswerWithOtherSizes) {
  // 3 classes, 2 features; logits given directly. Class 0: rows 0 (correct) and 1 (predicted 1);
  // class 1: rows 2, 3 (correct); class 2: row 4 (correct); row 5 is OOD.
  const at::Tensor z = rows({1, 0, 9, 9, 0, 2, 0, 4, 5, 5, 100, 100}, 2);
  const at::Tensor logits = rows({3, 0, 0, 0, 3, 0, 0, 3, 0, 1, 2, 0, 0, 0, 1, 5, 0, 0}, 3);
  auto det = make_detector("she");
  fit_on_views(*det, z, logits, labels({0, 0, 1, 1, 2, -1}), 4);
  const TensorDict state = det->state();
  EXPECT_TRUE(all_close(state.at("patterns"), rows({1, 0, 0, 3, 5, 5}, 2), 0, 0));
  EXPECT_TRUE(at::equal(state.at("n_correct"), labels({1, 2, 1})));
  // Query (2, 1) predicted class 1 -> -(0 * 2 + 3 * 1) = -3; predicted class 2 -> -15.
  const at::Tensor q = rows({2, 1, 2, 1}, 2);
  const at::Tensor ql = rows({0, 1, 0, 0, 0, 1}, 3);
  EXPECT_TRUE(all_close(score_views(*det, q, ql), at::tensor(std::vector<float>{-3, -15}), 0, 1e-6));
}

TEST(She, ClassWithoutCorrectSamplesFallsBackNeverNaN) {
  // Class 1 has samples, none classified correctly: its pattern is the mean of all of them.
  const at::Tensor z = rows({1, 0, 2, 2, 4, 0}, 2);
  const at::Tensor logits = rows({5, 0, 5, 0, 5, 0}, 2);  // everything predicted as class 0
  auto det = make_detector("she");
  fit_on_views(*det, z, logits, labels({0, 1, 1}));
  const TensorDict state = det->state();
  EXPECT_TRUE(at::isfinite(state.at("patterns")).all().item<bool>());
  EXPECT_TRUE(all_close(state.at("patterns"), rows({1, 0, 3, 1}, 2), 0, 0));
  EXPECT_TRUE(at::equal(state.at("n_correct"), labels({1, 0})));
  const at::Tensor s = score_views(*det, rows({1, 1}, 2), rows({0, 1}, 2));
  EXPECT_TRUE(at::isfinite(s).all().item<bool>());
  EXPECT_NEAR(s.item<double>(), -4.0, 1e-6);
  // On the reference data with only 3 fitting samples per class some class has no correct one.
  auto few = make_detector("she");
  const at::Tensor idx = at::arange(30);
  fit_on_views(*few, rd("features_fit").index({idx}), rd("logits_fit").index({idx}), rd("y_fit").index({idx}));
  EXPECT_TRUE(at::isfinite(score_views(*few, rd("features_out"), rd("logits_out"))).all().item<bool>());
}

TEST(She, ClassWithoutAnyFittingSampleIsAnError) {
  const at::Tensor z = rows({1, 0, 2, 2}, 2);
  const at::Tensor logits = rows({5, 0, 0, 0, 5, 0}, 3);
  auto det = make_detector("she");
  try {
    fit_on_views(*det, z, logits, labels({0, 1}));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("class 2"), std::string::npos) << e.what();
  }
  auto only_ood = make_detector("she");
  EXPECT_THROW(fit_on_views(*only_ood, rd("features_out"), rd("logits_out"), rd("y_out")), StateError);
  auto big_label = make_detector("she");
  EXPECT_THROW(fit_on_views(*big_label, z, logits, labels({0, 3})), ShapeError);
}

TEST(She, StateRoundTripIsBitIdentical) {
  auto det = fitted_on_reference();
  auto restored = make_detector("she");
  restored->attach(*reference_model());
  restored->load_state(det->state());
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor f = rd("features_out"), l = rd("logits_out");
  EXPECT_TRUE(at::equal(score_views(*restored, f, l), score_views(*det, f, l)));
}

TEST(She, ScoringBeforeFittingAndBadStates) {
  auto det = make_detector("she");
  det->attach(*reference_model());
  try {
    score_views(*det, rd("features_in"), rd("logits_in"));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("she: not fitted", 0), 0u) << e.what();
  }
  const TensorDict good = fitted_on_reference()->state();
  for (const char* key : {"patterns", "n_correct"}) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    EXPECT_THROW(det->load_state(s), StateError) << key;
  }
  TensorDict extra = good;
  extra.set("more", at::zeros({1}));
  EXPECT_THROW(det->load_state(extra), StateError);
  TensorDict wrong = good;
  wrong.set("patterns", at::zeros({10, 64}));  // the model has 128 features
  EXPECT_THROW(det->load_state(wrong), StateError);
  TensorDict counts = good;
  counts.set("n_correct", at::zeros({9}, at::kLong));
  EXPECT_THROW(det->load_state(counts), StateError);
  TensorDict nan = good;
  nan.set("patterns", at::full({10, 128}, std::numeric_limits<float>::quiet_NaN()));
  EXPECT_THROW(det->load_state(nan), StateError);
}

TEST(She, WrongInputShapes) {
  auto det = fitted_on_reference();
  EXPECT_THROW(score_views(*det, at::randn({4, 64}), at::randn({4, 10})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4, 128}), at::randn({4, 9})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4, 128}), at::randn({5, 10})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4}), at::randn({4, 10})), ShapeError);
  EXPECT_THROW(make_detector("she", R"({"k": 1})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
