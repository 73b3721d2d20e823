// vim: parity with pytorch-ood's ViM (tests/fixtures/reference/detectors/vim.*) and a
// known answer on a linear toy model.
#include "test_support.hpp"

#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fixture_vim() {
  static const auto d = load_tensor_dict_file("reference/detectors/vim.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fix(const std::string& key) { return tensor_of(fixture_vim(), key); }

std::shared_ptr<Detector> fitted_on_reference(std::int64_t d = 40) {
  auto det = make_detector("vim", R"({"d": )" + std::to_string(d) + "}");
  det->attach(*reference_model());
  fit_on_views(*det, rd("features_fit"), rd("logits_fit"), rd("y_fit"));
  return det;
}

TEST(Vim, FittedStateMatchesPytorchOod) {
  auto det = fitted_on_reference();
  const TensorDict state = det->state();
  EXPECT_TRUE(all_close(state.at("u"), fix("u"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(state.at("u"), fix("u_f64"), 1e-5, 1e-6));
  const at::Tensor ns = state.at("residual_basis");
  EXPECT_EQ(ns.size(0), 128);
  EXPECT_EQ(ns.size(1), 128 - 40);
  EXPECT_TRUE(all_close(at::mm(ns, ns.t()), fix("residual_projector"), 0, 5e-3));
  EXPECT_TRUE(all_close(state.at("alpha"), fix("alpha"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(state.at("alpha"), fix("alpha_f64"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(state.at("eigenvalues"), fix("eigenvalues"), 1e-3, 2e-6));
}

TEST(Vim, ScoresMatchPytorchOod) {
  auto det = fitted_on_reference();
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), rd(std::string("logits_") + side));
    EXPECT_EQ(s.scalar_type(), at::kFloat);
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side), 1e-3, 5e-3)) << side;
    EXPECT_TRUE(all_close(s, fix(std::string("scores_") + side + "_f64"), 1e-3, 5e-3)) << side;
  }
}

TEST(Vim, ThroughTheModelMatchesPytorchOod) {
  auto det = make_detector("vim", R"({"d": 40})");
  auto model = reference_model();
  fit_on_model(*det, *model, rd("x_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"})
    EXPECT_TRUE(all_close(score_on_model(*det, *model, rd(std::string("x_") + side)),
                          fix(std::string("scores_") + side), 1e-3, 5e-3))
        << side;
}

// Features u + (+-4, +-3, +-2, +-1): covariance about u is diag(16, 9, 4, 1) exactly.
struct Toy {
  at::Tensor w = at::tensor(std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0}).view({2, 4});
  at::Tensor b = at::tensor(std::vector<float>{1, -2});
  at::Tensor u = at::tensor(std::vector<float>{-1, 2, 0, 0});  // -pinv(W) b
  at::Tensor z() const {
    std::vector<float> v;
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 4; ++j) v.push_back(((i >> j) & 1 ? 1.0f : -1.0f) * static_cast<float>(4 - j));
    return at::tensor(v).view({16, 4}) + u;
  }
};

TEST(Vim, KnownAnswerOnALinearToyModel) {
  Toy toy;
  LinearModel model(toy.w, toy.b);
  auto det = make_detector("vim", R"({"d": 2})");
  fit_on_model(*det, model, toy.z(), at::zeros({16}, at::kLong), 5);
  const TensorDict state = det->state();
  EXPECT_TRUE(all_close(state.at("u"), toy.u, 0, 1e-12));
  EXPECT_TRUE(all_close(state.at("eigenvalues"), at::tensor(std::vector<double>{16, 9, 4, 1}), 0, 1e-12));
  // Residual space = span(e2, e3); every fit sample has residual norm sqrt(5); the mean of
  // the max logits is (8 * 4 + 4 * 3 - 4 * 3) / 16 = 2, so alpha = 2 / sqrt(5).
  const at::Tensor ns = state.at("residual_basis");
  EXPECT_TRUE(all_close(at::mm(ns, ns.t()), at::diag(at::tensor(std::vector<double>{0, 0, 1, 1})), 0, 1e-12));
  EXPECT_NEAR(state.at("alpha").item<double>(), 2.0 / std::sqrt(5.0), 1e-12);
  // z - u = (1, 2, 3, 4): residual norm 5, logits (1, 2).
  const at::Tensor q = (at::tensor(std::vector<float>{1, 2, 3, 4}) + toy.u).unsqueeze(0);
  const double expected = 2.0 / std::sqrt(5.0) * 5.0 - std::log(std::exp(1.0) + std::exp(2.0));
  EXPECT_NEAR(score_on_model(*det, model, q).item<double>(), expected, 1e-5);
  // OOD-labelled fit samples are ignored.
  auto with_ood = make_detector("vim", R"({"d": 2})");
  fit_on_model(*with_ood, model, at::cat({toy.z(), at::randn({4, 4}) * 50}),
               at::cat({at::zeros({16}, at::kLong), at::full({4}, -1, at::kLong)}), 7);
  EXPECT_NEAR(with_ood->state().at("alpha").item<double>(), 2.0 / std::sqrt(5.0), 1e-12);
}

TEST(Vim, DMustBeSmallerThanTheFeatureSize) {
  for (int d : {128, 200}) {
    auto det = make_detector("vim", R"({"d": )" + std::to_string(d) + "}");
    try {
      det->attach(*reference_model());
      FAIL() << "no error for d = " << d;
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("/test/params/d: ", 0), 0u) << e.what();
    }
  }
  EXPECT_NO_THROW(make_detector("vim", R"({"d": 127})")->attach(*reference_model()));
  // Without attach, the first fitting batch tells the feature size.
  Toy toy;
  LinearModel model(toy.w, toy.b);
  auto det = make_detector("vim", R"({"d": 4})");
  EXPECT_THROW(fit_on_model(*det, model, toy.z(), at::zeros({16}, at::kLong)), InvalidArgument);
  EXPECT_THROW(make_detector("vim"), InvalidArgument);  // d is required
  EXPECT_THROW(make_detector("vim", R"({"d": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("vim", R"({"d": "40"})"), InvalidArgument);
}

TEST(Vim, StateRoundTripIsBitIdentical) {
  auto det = fitted_on_reference();
  auto restored = make_detector("vim", R"({"d": 40})");
  restored->attach(*reference_model());
  restored->load_state(det->state());
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor f = rd("features_out"), l = rd("logits_out");
  EXPECT_TRUE(at::equal(score_views(*restored, f, l), score_views(*det, f, l)));
}

TEST(Vim, ScoringBeforeFittingAndBadStates) {
  auto det = make_detector("vim", R"({"d": 40})");
  det->attach(*reference_model());
  try {
    score_views(*det, rd("features_in"), rd("logits_in"));
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("vim: not fitted", 0), 0u) << e.what();
  }
  const TensorDict good = fitted_on_reference()->state();
  auto without = [&](const std::string& key) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    return s;
  };
  for (const char* key : {"u", "residual_basis", "alpha", "eigenvalues"})
    EXPECT_THROW(det->load_state(without(key)), StateError) << key;
  TensorDict extra = good;
  extra.set("principal_subspace", at::zeros({1}));
  EXPECT_THROW(det->load_state(extra), StateError);
  TensorDict wrong_d = good;  // basis for d = 30
  wrong_d.set("residual_basis", at::zeros({128, 98}, at::kDouble));
  EXPECT_THROW(det->load_state(wrong_d), StateError);
  TensorDict wrong_alpha = good;
  wrong_alpha.set("alpha", at::zeros({2}, at::kDouble));
  EXPECT_THROW(det->load_state(wrong_alpha), StateError);
  // A state for another feature size than the attached model's.
  Toy toy;
  LinearModel model(toy.w, toy.b);
  auto toy_det = make_detector("vim", R"({"d": 2})");
  fit_on_model(*toy_det, model, toy.z(), at::zeros({16}, at::kLong));
  auto other = make_detector("vim", R"({"d": 2})");
  other->attach(*reference_model());
  EXPECT_THROW(other->load_state(toy_det->state()), StateError);
}

TEST(Vim, WrongInputShapes) {
  auto det = fitted_on_reference();
  EXPECT_THROW(score_views(*det, at::randn({4, 64}), at::randn({4, 10})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4}), at::randn({4, 10})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4, 128}), at::randn({3, 10})), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4, 128}), at::Tensor()), StateError);  // no logits
  // Fitting without a model (not attached, views without model) is a clear error.
  auto lone = make_detector("vim", R"({"d": 40})");
  EXPECT_THROW(fit_on_views(*lone, rd("features_fit"), rd("logits_fit"), rd("y_fit")), StateError);
}

}  // namespace
}  // namespace ood::test
