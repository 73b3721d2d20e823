// Parity of energy-based with pytorch-ood's EnergyBased (tests/fixtures/reference).
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_energy() {
  static const auto d = load_tensor_dict_file("reference/detectors/energy.pt");
  return d;
}

TEST(EnergyBased, MatchesPytorchOodOnReferenceLogits) {
  // key t1: t = 1.0, key t: t = 2.5 (see energy.json).
  for (const auto& [key, params] : {std::pair<std::string, std::string>{"t1", R"({"t": 1.0})"},
                                    std::pair<std::string, std::string>{"t", R"({"t": 2.5})"}}) {
    auto det = make_detector("energy-based", params);
    for (const char* side : {"in", "out"}) {
      const at::Tensor logits = tensor_of(reference_data(), std::string("logits_") + side);
      const at::Tensor expected = tensor_of(fixture_energy(), "scores_" + key + "_" + side);
      EXPECT_TRUE(all_close(score_logits(*det, logits), expected, 1e-5, 1e-6)) << key << " " << side;
    }
    EXPECT_TRUE(all_close(score_logits(*det, tensor_of(fixture_energy(), "edge_logits")),
                          tensor_of(fixture_energy(), "edge_scores_" + key), 1e-5, 1e-6))
        << key;
  }
}

TEST(EnergyBased, DefaultTemperatureIsOne) {
  auto det = make_detector("energy-based");
  const at::Tensor logits = tensor_of(reference_data(), "logits_in");
  EXPECT_TRUE(all_close(score_logits(*det, logits), tensor_of(fixture_energy(), "scores_t1_in"), 1e-5, 1e-6));
}

TEST(EnergyBased, SegmentationLogitsGivePixelScores) {
  auto det = make_detector("energy-based");
  const at::Tensor logits = at::randn({2, 5, 3, 4});
  const at::Tensor scores = score_logits(*det, logits);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(all_close(scores, -at::logsumexp(logits, 1), 1e-6, 1e-6));
}

TEST(EnergyBased, RefusesBadLogits) {
  auto det = make_detector("energy-based");
  EXPECT_THROW(score_logits(*det, at::ones({4}, at::kFloat)), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({4, 3}, at::kLong)), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({4, 0}, at::kFloat)), ShapeError);
  try {
    score_logits(*det, at::ones({4}, at::kLong));
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("energy-based"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Long [4]"), std::string::npos) << e.what();
  }
}

TEST(EnergyBased, RefusesNonPositiveTemperature) {
  EXPECT_THROW(make_detector("energy-based", R"({"t": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("energy-based", R"({"t": -1.5})"), InvalidArgument);
  EXPECT_THROW(make_detector("energy-based", R"({"t": "1"})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
