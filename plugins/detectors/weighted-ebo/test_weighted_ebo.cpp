// weighted-ebo: parity with pytorch-ood's WeightedEBO (tests/fixtures/reference) and
// the max-shifted log-sum-exp (POLICY.md).
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/tensor_dict.hpp"

namespace ood::test {
namespace {

const auto& fixture_webo() {
  static const auto d = load_tensor_dict_file("reference/detectors/weighted_ebo.pt");
  return d;
}

std::string write_weights(const std::string& name, const TensorDict& dict) {
  const auto file = temp_dir("weighted-ebo-" + name) / "weights.pt";
  io::save_tensor_dict(file, dict);
  return file.string();
}

std::string fixture_weights_file() {
  TensorDict d;
  d.set("weight", tensor_of(fixture_webo(), "weights_weight"));
  d.set("bias", tensor_of(fixture_webo(), "weights_bias"));
  return write_weights("fixture", d);
}

std::shared_ptr<Detector> fixture_detector() {
  return make_detector("weighted-ebo", R"({"weights": ")" + fixture_weights_file() + R"("})");
}

// -log sum_c relu(w_c) exp(l_c) in long double, for a row.
at::Tensor reference_scores(const at::Tensor& logits, const at::Tensor& w) {
  const at::Tensor l = logits.to(at::kDouble).contiguous();
  const at::Tensor ww = w.reshape({-1}).to(at::kDouble).contiguous();
  at::Tensor out = at::empty({l.size(0)}, at::kDouble);
  for (int64_t i = 0; i < l.size(0); ++i) {
    long double m = -INFINITY;
    for (int64_t c = 0; c < l.size(1); ++c)
      if (ww[c].item<double>() > 0) m = std::max<long double>(m, l[i][c].item<double>());
    long double s = 0;
    for (int64_t c = 0; c < l.size(1); ++c)
      if (ww[c].item<double>() > 0) s += ww[c].item<double>() * std::exp((long double)l[i][c].item<double>() - m);
    out[i] = static_cast<double>(-(m + std::log(s)));
  }
  return out;
}

TEST(WeightedEbo, MatchesPytorchOodOnReferenceLogits) {
  auto det = fixture_detector();
  for (const char* side : {"in", "out"}) {
    const std::string s = side;
    EXPECT_TRUE(all_close(score_logits(*det, tensor_of(reference_data(), "logits_" + s)),
                          tensor_of(fixture_webo(), "scores_" + s), 1e-4, 1e-4))
        << side;
    // float64 logits: float64 scores, equal to the float64 recomputation.
    const at::Tensor s64 = score_logits(*det, tensor_of(reference_data(), "logits_" + s + "_f64"));
    EXPECT_EQ(s64.scalar_type(), at::kDouble);
    EXPECT_TRUE(all_close(s64, tensor_of(fixture_webo(), "scores_" + s + "_f64"), 1e-10, 1e-12)) << side;
  }
}

TEST(WeightedEbo, SegmentationLogitsGivePixelScores) {
  auto det = fixture_detector();
  const at::Tensor scores = score_logits(*det, tensor_of(fixture_webo(), "logits_4d"));
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(all_close(scores, tensor_of(fixture_webo(), "scores_4d"), 1e-5, 1e-6));
}

TEST(WeightedEbo, ExtremeLogitsStayFiniteUnlikePytorchOod) {
  auto det = fixture_detector();
  const at::Tensor edge = tensor_of(fixture_webo(), "edge_logits");
  const at::Tensor expected = tensor_of(fixture_webo(), "edge_scores");  // inf / NaN where exp over/underflows
  const at::Tensor scores = score_logits(*det, edge);
  EXPECT_TRUE(at::isfinite(scores).all().item<bool>()) << scores;
  // The definition, max-shifted in long double.
  EXPECT_TRUE(all_close(scores.to(at::kDouble), reference_scores(edge, tensor_of(fixture_webo(), "weights_weight")),
                        1e-6, 1e-4));
  // Where pytorch-ood's value is finite it is kept; its non-finite values are not reproduced.
  const at::Tensor finite = at::isfinite(expected);
  ASSERT_TRUE((~finite).any().item<bool>());
  EXPECT_TRUE(all_close(scores.index({finite}), expected.index({finite}), 1e-5, 1e-6));
  // Large logits in float64 too: 1e5 + the score of the shifted logits.
  const at::Tensor big = tensor_of(reference_data(), "logits_in_f64") + 1e5;
  EXPECT_TRUE(all_close(score_logits(*det, big), tensor_of(fixture_webo(), "scores_in_f64") - 1e5, 1e-10, 1e-8));
}

TEST(WeightedEbo, OtherClassCountsAndKnownAnswer) {
  // All weights 1: the plain energy -logsumexp; weight 0 drops a class; weight 2 adds log 2.
  TensorDict d;
  d.set("weight", at::tensor({1.0f, 0.0f, 2.0f, 1.0f, -3.0f, 1.0f, 1.0f}).view({1, 7}));
  auto det = make_detector("weighted-ebo", R"({"weights": ")" + write_weights("seven", d) + R"("})");
  const at::Tensor l = at::randn({33, 7}, at::kDouble) * 4;
  const at::Tensor w = at::tensor({1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 1.0}, at::kDouble);
  EXPECT_TRUE(all_close(score_logits(*det, l), -at::logsumexp(l + at::log(w), 1), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(score_logits(*det, l), reference_scores(l, w), 1e-12, 1e-12));
  EXPECT_THROW(score_logits(*det, at::randn({3, 10})), ShapeError);
}

TEST(WeightedEbo, RefusesBadWeightFiles) {
  const std::string missing = (temp_dir("weighted-ebo-missing") / "nope.pt").string();
  EXPECT_THROW(make_detector("weighted-ebo", R"({"weights": ")" + missing + R"("})"), FileError);
  EXPECT_THROW(make_detector("weighted-ebo", "{}"), InvalidArgument);  // required
  auto expect_invalid = [](const std::string& name, const TensorDict& d, const std::string& needle) {
    try {
      make_detector("weighted-ebo", R"({"weights": ")" + write_weights(name, d) + R"("})");
      ADD_FAILURE() << name << ": no error";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("/weights"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TensorDict no_weight;
  no_weight.set("bias", at::zeros({1}));
  expect_invalid("noweight", no_weight, "weight");
  TensorDict wrong_shape;
  wrong_shape.set("weight", at::ones({2, 10}));
  expect_invalid("shape", wrong_shape, "[1, C]");
  TensorDict extra;
  extra.set("weight", at::ones({1, 10}));
  extra.set("fc.weight", at::ones({1, 10}));
  expect_invalid("extra", extra, "fc.weight");
  TensorDict all_negative;
  all_negative.set("weight", -at::ones({1, 10}));
  expect_invalid("negative", all_negative, "<= 0");
  TensorDict integer;
  integer.set("weight", at::ones({1, 10}, at::kLong));
  expect_invalid("integer", integer, "floating");
}

TEST(WeightedEbo, ChecksClassCountAgainstModelAndInputShapes) {
  TensorDict d;
  d.set("weight", at::ones({1, 7}));
  auto det = make_detector("weighted-ebo", R"({"weights": ")" + write_weights("attach", d) + R"("})");
  EXPECT_THROW(det->attach(*reference_model()), InvalidArgument);
  auto ok = fixture_detector();
  EXPECT_NO_THROW(ok->attach(*reference_model()));
  EXPECT_FALSE(ok->needs().fit);
  EXPECT_THROW(score_logits(*ok, at::ones({4})), ShapeError);
  EXPECT_THROW(score_logits(*ok, at::ones({4, 10}, at::kLong)), ShapeError);
  EXPECT_THROW(score_logits(*ok, at::ones({4, 9})), ShapeError);
}

}  // namespace
}  // namespace ood::test
