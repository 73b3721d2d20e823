// react: parity with pytorch-ood's ReAct (tests/fixtures/reference/detectors/react.*), the
// fitted percentile threshold, the nested detector and errors.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fixture_react() {
  static const auto d = load_tensor_dict_file("reference/detectors/react.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fix(const std::string& key) { return tensor_of(fixture_react(), key); }

std::shared_ptr<Detector> attached(const std::string& params) {
  auto det = make_detector("react", params);
  det->attach(*reference_model());
  return det;
}

TEST(React, FixedThresholdMatchesPytorchOod) {
  // th0: threshold 1.0 (also the default), energy; msp: the same with max-softmax.
  for (const std::string params : {R"({"threshold": 1.0})", "{}"}) {
    auto det = attached(params);
    EXPECT_FALSE(det->needs().fit);
    EXPECT_TRUE(det->is_fitted());
    EXPECT_TRUE(det->state().empty());
    for (const char* side : {"in", "out"}) {
      const at::Tensor s = score_views(*det, rd(std::string("features_") + side), at::Tensor());
      EXPECT_TRUE(all_close(s, fix(std::string("scores_th0_") + side), 1e-4, 1e-4)) << side;
      EXPECT_TRUE(all_close(s, fix(std::string("scores_th0_") + side + "_f64"), 1e-4, 1e-4)) << side;
    }
  }
  auto msp = attached(R"({"threshold": 1.0, "detector": {"plugin": "max-softmax"}})");
  for (const char* side : {"in", "out"})
    EXPECT_TRUE(all_close(score_views(*msp, rd(std::string("features_") + side), at::Tensor()),
                          fix(std::string("scores_msp_") + side), 1e-4, 1e-4))
        << side;
}

TEST(React, ClippedLogitsMatchPytorchOod) {
  // max-logit of the clipped logits is -max of fixture's logits_th0.
  auto det = attached(R"({"threshold": 1.0, "detector": {"plugin": "max-logit"}})");
  for (const char* side : {"in", "out"}) {
    const at::Tensor expected = -std::get<0>(fix(std::string("logits_th0_") + side).max(1));
    EXPECT_TRUE(all_close(score_views(*det, rd(std::string("features_") + side), at::Tensor()), expected, 1e-4,
                          1e-4));
  }
}

TEST(React, PercentileFitsTheThresholdAsPytorchOodsRun) {
  // th1: threshold = numpy.percentile(features_fit.ravel(), 90.0) = 0.532756781578064.
  auto det = attached(R"({"percentile": 90})");
  EXPECT_TRUE(det->needs().fit);
  EXPECT_FALSE(det->is_fitted());
  fit_on_views(*det, rd("features_fit"), at::Tensor(), rd("y_fit"));
  EXPECT_NEAR(det->state().at("threshold").item<double>(), 0.532756781578064, 1e-7);
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), at::Tensor());
    EXPECT_TRUE(all_close(s, fix(std::string("scores_th1_") + side), 1e-4, 1e-4)) << side;
    EXPECT_TRUE(all_close(s, fix(std::string("scores_th1_") + side + "_f64"), 1e-4, 1e-4)) << side;
  }
  // Through the model, with the given threshold.
  auto model = reference_model();
  auto through = make_detector("react", R"({"threshold": 0.532756781578064})");
  through->attach(*model);
  for (const char* side : {"in", "out"})
    EXPECT_TRUE(all_close(score_on_model(*through, *model, rd(std::string("x_") + side)),
                          fix(std::string("scores_th1_") + side), 1e-4, 1e-4))
        << side;
}

TEST(React, PercentileIsNumpysLinearPercentileOverInSamples) {
  // 1..10 and an OOD row: 25th percentile of 1..10 = 1 + 9 * 0.25 = 3.25.
  auto det = attached(R"({"percentile": 25})");
  const at::Tensor f = at::cat({at::arange(1, 11, at::kFloat).view({5, 2}), at::full({1, 2}, 1000.0)});
  Views v;
  v.set_features(f);
  det->fit_batch(v, at::tensor(std::vector<std::int64_t>{0, 1, 2, 3, 4, -1}));
  det->finish_fit();
  EXPECT_NEAR(det->state().at("threshold").item<double>(), 3.25, 1e-12);
  auto top = attached(R"({"percentile": 100})");
  fit_on_views(*top, f, at::Tensor(), at::tensor(std::vector<std::int64_t>{0, 1, 2, 3, 4, -1}), 4);
  EXPECT_NEAR(top->state().at("threshold").item<double>(), 10.0, 1e-12);
}

TEST(React, ClipIsOnlyAnUpperClip) {
  // With a threshold above every feature nothing changes: the energy of the logits.
  auto det = attached(R"({"threshold": 1e6})");
  const at::Tensor s = score_views(*det, rd("features_in"), at::Tensor());
  EXPECT_TRUE(all_close(s, -at::logsumexp(rd("logits_in"), 1), 1e-5, 1e-5));
  // Negative features are not raised to the threshold.
  auto low = attached(R"({"threshold": -0.5, "detector": {"plugin": "max-logit"}})");
  const at::Tensor f = at::full({1, 128}, -2.0);
  const auto head = reference_model()->linear_head();
  const at::Tensor expected = -std::get<0>(at::linear(f, head->weight, head->bias).max(1));
  EXPECT_TRUE(all_close(score_views(*low, f, at::Tensor()), expected, 1e-5, 1e-5));
}

TEST(React, StateRoundTripIsBitIdentical) {
  auto det = attached(R"({"percentile": 90})");
  fit_on_views(*det, rd("features_fit"), at::Tensor(), rd("y_fit"));
  auto restored = attached(R"({"percentile": 90})");
  restored->load_state(det->state());
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor f = rd("features_out");
  EXPECT_TRUE(at::equal(score_views(*restored, f, at::Tensor()), score_views(*det, f, at::Tensor())));
}

TEST(React, ScoringBeforeFittingAndBadStates) {
  auto det = attached(R"({"percentile": 90})");
  try {
    score_views(*det, rd("features_in"), at::Tensor());
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("react: not fitted", 0), 0u) << e.what();
  }
  EXPECT_THROW(det->load_state(TensorDict()), StateError);
  TensorDict extra;
  extra.set("threshold", at::scalar_tensor(1.0, at::kDouble));
  extra.set("percentile", at::scalar_tensor(90.0, at::kDouble));
  EXPECT_THROW(det->load_state(extra), StateError);
  TensorDict shape;
  shape.set("threshold", at::ones({2}, at::kDouble));
  EXPECT_THROW(det->load_state(shape), StateError);
  TensorDict nan;
  nan.set("threshold", at::scalar_tensor(std::nan(""), at::kDouble));
  EXPECT_THROW(det->load_state(nan), StateError);
  auto fixed = attached("{}");
  TensorDict one;
  one.set("threshold", at::scalar_tensor(1.0, at::kDouble));
  EXPECT_THROW(fixed->load_state(one), StateError);
  EXPECT_NO_THROW(fixed->load_state(TensorDict()));
  EXPECT_THROW(fixed->fit_batch(*std::make_unique<Views>(), at::zeros({0}, at::kLong)), StateError);
}

TEST(React, BadParametersAndNestedDetectors) {
  EXPECT_THROW(make_detector("react", R"({"threshold": 1.0, "percentile": 90})"), InvalidArgument);
  EXPECT_THROW(make_detector("react", R"({"percentile": 101})"), InvalidArgument);
  EXPECT_THROW(make_detector("react", R"({"percentile": -1})"), InvalidArgument);
  EXPECT_THROW(make_detector("react", R"({"detector": {"plugin": "no-such-detector"}})"), InvalidArgument);
  EXPECT_THROW(make_detector("react", R"({"detector": {"plugin": "max-softmax", "params": {"t": 0}}})"),
               InvalidArgument);
  // A detector that needs more than the logits (here: one that fits) is refused at its pointer.
  try {
    make_detector("react", R"({"detector": {"plugin": "she"}})");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/detector", 0), 0u) << e.what();
  }
  EXPECT_NO_THROW(make_detector("react", R"({"detector": {"plugin": "energy-based", "params": {"t": 2}}})"));
}

TEST(React, WrongInputShapes) {
  auto det = attached("{}");
  EXPECT_THROW(score_views(*det, at::randn({4, 64}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4}), at::Tensor()), ShapeError);
  auto lone = make_detector("react");  // not attached, views without a model
  EXPECT_THROW(score_views(*lone, rd("features_in"), at::Tensor()), StateError);
}

}  // namespace
}  // namespace ood::test
