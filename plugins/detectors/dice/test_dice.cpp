// dice: parity with pytorch-ood's DICE (tests/fixtures/reference/detectors/dice.*) and a
// known answer on a linear toy model.
#include "test_support.hpp"

#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fixture_dice() {
  static const auto d = load_tensor_dict_file("reference/detectors/dice.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fix(const std::string& key) { return tensor_of(fixture_dice(), key); }

std::shared_ptr<Detector> fitted_on_reference(const std::string& params = R"({"p": 90.0})") {
  auto det = make_detector("dice", params);
  det->attach(*reference_model());
  fit_on_views(*det, rd("features_fit"), at::Tensor(), rd("y_fit"));
  return det;
}

TEST(Dice, FittedStateMatchesPytorchOod) {
  const TensorDict state = fitted_on_reference()->state();
  EXPECT_TRUE(all_close(state.at("mean_activation"), fix("mean_activation"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(state.at("threshold"), fix("threshold"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(state.at("threshold"), fix("threshold_f64"), 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(state.at("masked_weight"), fix("masked_w")));
  EXPECT_EQ(state.at("masked_weight").ne(0).sum().item<std::int64_t>(), 128);  // 10 % of 10 x 128
}

TEST(Dice, ScoresMatchPytorchOod) {
  auto det = fitted_on_reference();
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), at::Tensor());
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side), 1e-4, 1e-4)) << side;
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side + "_f64"), 1e-4, 1e-4)) << side;
  }
}

TEST(Dice, ThroughTheModelMatchesPytorchOod) {
  auto det = make_detector("dice", R"({"p": 90})");
  auto model = reference_model();
  fit_on_model(*det, *model, rd("x_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"})
    EXPECT_TRUE(all_close(score_on_model(*det, *model, rd(std::string("x_") + side)),
                          fix(std::string("scores_") + side), 1e-4, 1e-4))
        << side;
}

TEST(Dice, KnownAnswerOnALinearToyModel) {
  // W = [[1, 2, 3], [-1, 4, 0.5]], mean feature (1, 1, 2): contrib = [[1, 2, 6], [-1, 4, 1]].
  // Sorted: -1, 1, 1, 2, 4, 6. p = 50: position 2.5 -> 1.5; kept: 2, 6, 4 (contrib > 1.5).
  const at::Tensor w = at::tensor(std::vector<float>{1, 2, 3, -1, 4, 0.5}).view({2, 3});
  const at::Tensor b = at::tensor(std::vector<float>{0.5, -0.5});
  LinearModel model(w, b);
  const at::Tensor z = at::tensor(std::vector<float>{0, 1, 2, 2, 1, 2, 5, 0, 0}).view({3, 3});
  const at::Tensor y = at::tensor(std::vector<std::int64_t>{0, 1, -1});  // the third row is OOD: ignored
  auto det = make_detector("dice", R"({"p": 50})");
  fit_on_model(*det, model, z, y, 2);
  const TensorDict state = det->state();
  EXPECT_TRUE(all_close(state.at("mean_activation"), at::tensor(std::vector<double>{1, 1, 2}), 0, 1e-12));
  EXPECT_NEAR(state.at("threshold").item<double>(), 1.5, 1e-12);
  EXPECT_TRUE(at::equal(state.at("masked_weight"), at::tensor(std::vector<float>{0, 2, 3, 0, 4, 0}).view({2, 3})));
  const at::Tensor q = at::tensor(std::vector<float>{1, 1, 1}).unsqueeze(0);
  // logits' = (2 + 3 + 0.5, 4 - 0.5) = (5.5, 3.5)
  EXPECT_NEAR(score_on_model(*det, model, q).item<double>(), -std::log(std::exp(5.5) + std::exp(3.5)), 1e-5);
  // p = 0 keeps every weight above the smallest contribution; p = 100 keeps none (energy of b).
  auto none = make_detector("dice", R"({"p": 100})");
  fit_on_model(*none, model, z, y);
  EXPECT_NEAR(score_on_model(*none, model, q).item<double>(), -std::log(std::exp(0.5) + std::exp(-0.5)), 1e-5);
}

TEST(Dice, DefaultAndBadParameters) {
  EXPECT_NO_THROW(make_detector("dice"));  // p = 90 by default
  EXPECT_THROW(make_detector("dice", R"({"p": -1})"), InvalidArgument);
  EXPECT_THROW(make_detector("dice", R"({"p": 100.5})"), InvalidArgument);
  EXPECT_THROW(make_detector("dice", R"({"p": "90"})"), InvalidArgument);
  EXPECT_THROW(make_detector("dice", R"({"percentile": 90})"), InvalidArgument);
}

TEST(Dice, StateRoundTripIsBitIdentical) {
  auto det = fitted_on_reference();
  auto restored = make_detector("dice", R"({"p": 90})");
  restored->attach(*reference_model());
  restored->load_state(det->state());
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor f = rd("features_out");
  EXPECT_TRUE(at::equal(score_views(*restored, f, at::Tensor()), score_views(*det, f, at::Tensor())));
  // The restored detector needs no model to score.
  auto offline = make_detector("dice", R"({"p": 90})");
  offline->load_state(det->state());
  EXPECT_TRUE(at::equal(score_views(*offline, f, at::Tensor()), score_views(*det, f, at::Tensor())));
}

TEST(Dice, ScoringBeforeFittingAndBadStates) {
  auto det = make_detector("dice", R"({"p": 90})");
  det->attach(*reference_model());
  try {
    score_views(*det, rd("features_in"), at::Tensor());
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("dice: not fitted", 0), 0u) << e.what();
  }
  const TensorDict good = fitted_on_reference()->state();
  for (const char* key : {"mean_activation", "threshold", "masked_weight", "bias"}) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    EXPECT_THROW(det->load_state(s), StateError) << key;
  }
  TensorDict extra = good;
  extra.set("mask", at::zeros({1}));
  EXPECT_THROW(det->load_state(extra), StateError);
  TensorDict wrong = good;
  wrong.set("masked_weight", at::zeros({10, 64}));
  EXPECT_THROW(det->load_state(wrong), StateError);
  TensorDict wrong_bias = good;
  wrong_bias.set("bias", at::zeros({9}));
  EXPECT_THROW(det->load_state(wrong_bias), StateError);
  // Consistent in itself but not with the attached model's head (5 classes, not 10).
  TensorDict other;
  other.set("mean_activation", at::zeros({128}, at::kDouble));
  other.set("threshold", at::zeros({}, at::kDouble));
  other.set("masked_weight", at::zeros({5, 128}));
  other.set("bias", at::zeros({5}));
  EXPECT_THROW(det->load_state(other), StateError);
}

TEST(Dice, WrongInputShapes) {
  auto det = fitted_on_reference();
  EXPECT_THROW(score_views(*det, at::randn({4, 64}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4}), at::Tensor()), ShapeError);
  auto lone = make_detector("dice");  // neither attached nor views with a model
  EXPECT_THROW(fit_on_views(*lone, rd("features_fit"), at::Tensor(), rd("y_fit")), StateError);
  auto attached = make_detector("dice");
  attached->attach(*reference_model());
  EXPECT_THROW(fit_on_views(*attached, at::randn({8, 64}), at::Tensor(), at::zeros({8}, at::kLong)), ShapeError);
  auto only_ood = make_detector("dice");
  only_ood->attach(*reference_model());
  EXPECT_THROW(fit_on_views(*only_ood, rd("features_out"), at::Tensor(), rd("y_out")), StateError);
}

}  // namespace
}  // namespace ood::test
