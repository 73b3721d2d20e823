// ash: parity with pytorch-ood's ASH (tests/fixtures/reference/detectors/ash.*), numpy's
// half-to-even rounding of k, the three variants on a known map, and errors.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

#include <map>

namespace ood::test {
namespace {

const auto& fixture_ash() {
  static const auto d = load_tensor_dict_file("reference/detectors/ash.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fix(const std::string& key) { return tensor_of(fixture_ash(), key); }

std::shared_ptr<Detector> attached(const std::string& params) {
  auto det = make_detector("ash", params);
  det->attach(*reference_model());
  return det;
}

// Energy of W x + b for the reference model's head.
at::Tensor energy_of_pooled(const at::Tensor& pooled) {
  const auto head = reference_model()->linear_head();
  return -at::logsumexp(at::linear(pooled, head->weight, head->bias), 1);
}

// The reference model's feature map of x_in / x_out, computed once.
const at::Tensor& map_of(const std::string& side) {
  static std::map<std::string, at::Tensor> cache;
  auto it = cache.find(side);
  if (it == cache.end()) {
    at::NoGradGuard no_grad;
    it = cache.emplace(side, reference_model()->features_before_pool(rd("x_" + side))).first;
  }
  return it->second;
}

at::Tensor score_map(Detector& det, const at::Tensor& map) {
  at::NoGradGuard no_grad;
  Views v;
  v.set_feature_map(map);
  return det.score(v);
}

TEST(Ash, VariantsMatchPytorchOodOnTheModelsFeatureMap) {
  auto model = reference_model();
  for (const std::string variant : {"ash-p", "ash-b", "ash-s"}) {
    auto det = make_detector("ash", R"({"variant": ")" + variant + R"(", "percentile": 0.65})");
    det->attach(*model);
    EXPECT_FALSE(det->needs().fit);
    EXPECT_TRUE(det->needs().feature_map);
    std::string key = variant;
    key[3] = '_';
    for (const char* side : {"in", "out"}) {
      const at::Tensor s = score_map(*det, map_of(side));
      EXPECT_TRUE(all_close(s, fix("scores_" + key + "_" + side), 1e-4, 1e-4)) << variant << " " << side;
      EXPECT_TRUE(all_close(s, fix("scores_" + key + "_" + side + "_f64"), 1e-4, 1e-4)) << variant << " " << side;
    }
  }
}

TEST(Ash, PooledShapedMapsMatchPytorchOod) {
  // The energy of the fixture's pooled maps equals the scores: check our scores on the first
  // 16 samples against energy(fc(pooled)) (the pooled maps themselves are internal).
  auto model = reference_model();
  for (const std::string key : {"ash_p", "ash_b", "ash_s"}) {
    std::string variant = key;
    variant[3] = '-';
    auto det = make_detector("ash", R"({"variant": ")" + variant + R"("})");
    det->attach(*model);
    const at::Tensor s = score_map(*det, map_of("out").slice(0, 0, 16));
    EXPECT_TRUE(all_close(s, energy_of_pooled(fix("pooled_" + key + "_out")), 1e-4, 1e-4)) << key;
  }
}

TEST(Ash, DefaultsAreAshSAt065WithEnergyThroughTheModel) {
  // The evaluator's path: Views on the model compute the feature map themselves.
  auto det = attached("{}");
  auto model = reference_model();
  EXPECT_TRUE(all_close(score_on_model(*det, *model, rd("x_in")), fix("scores_ash_s_in"), 1e-4, 1e-4));
}

// A map [2, 128, 1, 1] holding a permutation of 1..128 per sample (pool = identity).
at::Tensor permuted_map() {
  at::manual_seed(11);
  const at::Tensor a = at::randperm(128).to(at::kFloat) + 1;
  const at::Tensor b = at::randperm(128).to(at::kFloat) + 1;
  return at::stack({a, b}).view({2, 128, 1, 1});
}

TEST(Ash, KeepsKRoundedHalfToEvenAndShapesAsDefined) {
  // n = 128, n * percentile = 64.5 -> numpy.round -> 64 (half to even) -> k = 64 kept:
  // the values 65..128 (round-half-up would keep 63).
  const std::string p = "0.50390625";
  const at::Tensor map = permuted_map();
  const at::Tensor before = map.clone();
  const at::Tensor x = map.view({2, 128});
  const at::Tensor kept_mask = x > 64;
  const at::Tensor kept = at::where(kept_mask, x, at::zeros_like(x));
  auto ash_p = attached(R"({"variant": "ash-p", "percentile": )" + p + "}");
  EXPECT_TRUE(all_close(score_map(*ash_p, map), energy_of_pooled(kept), 1e-5, 1e-4));
  EXPECT_TRUE(at::equal(map, before));  // the views' map is not modified
  // ash-b: the 64 kept entries set to sum(1..128) / 64 = 129.
  auto ash_b = attached(R"({"variant": "ash-b", "percentile": )" + p + "}");
  const at::Tensor binary = at::where(kept_mask, at::full_like(x, 129.0), at::zeros_like(x));
  EXPECT_TRUE(all_close(score_map(*ash_b, map), energy_of_pooled(binary), 1e-5, 1e-4));
  // ash-s: kept entries times exp(8256 / 6176).
  auto ash_s = attached(R"({"variant": "ash-s", "percentile": )" + p + "}");
  EXPECT_TRUE(all_close(score_map(*ash_s, map), energy_of_pooled(kept * std::exp(8256.0 / 6176.0)), 1e-5, 1e-3));
  // percentile 0 keeps everything: ash-p is the plain energy of the pooled map.
  auto all = attached(R"({"variant": "ash-p", "percentile": 0})");
  EXPECT_TRUE(all_close(score_map(*all, map), energy_of_pooled(x), 1e-5, 1e-4));
}

TEST(Ash, NestedDetectorScoresTheShapedLogits) {
  auto det = attached(R"({"variant": "ash-p", "percentile": 0.5, "detector": {"plugin": "max-logit"}})");
  const at::Tensor map = permuted_map();
  const at::Tensor x = map.view({2, 128});
  const at::Tensor kept = at::where(x > 64, x, at::zeros_like(x));
  const auto head = reference_model()->linear_head();
  const at::Tensor expected = -std::get<0>(at::linear(kept, head->weight, head->bias).max(1));
  EXPECT_TRUE(all_close(score_map(*det, map), expected, 1e-5, 1e-4));
  try {
    make_detector("ash", R"({"detector": {"plugin": "knn"}})");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/detector", 0), 0u) << e.what();
  }
}

TEST(Ash, NeverNaNOnAnAllZeroMap) {
  for (const std::string variant : {"ash-p", "ash-b", "ash-s"}) {
    auto det = attached(R"({"variant": ")" + variant + R"("})");
    const at::Tensor s = score_map(*det, at::zeros({3, 128, 2, 2}));
    EXPECT_TRUE(at::isfinite(s).all().item<bool>()) << variant;
    EXPECT_TRUE(all_close(s, energy_of_pooled(at::zeros({3, 128})), 1e-5, 1e-5)) << variant;
  }
}

TEST(Ash, BadParametersAndInputs) {
  EXPECT_THROW(make_detector("ash", R"({"variant": "ash-x"})"), InvalidArgument);
  EXPECT_THROW(make_detector("ash", R"({"percentile": 1.0})"), InvalidArgument);
  EXPECT_THROW(make_detector("ash", R"({"percentile": -0.1})"), InvalidArgument);
  EXPECT_THROW(make_detector("ash", R"({"percentile": 65})"), InvalidArgument);
  // A percentile that keeps no entry of this map: 128 * 0.999 rounds to 128.
  auto det = attached(R"({"percentile": 0.999})");
  try {
    score_map(*det, permuted_map());
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/percentile", 0), 0u) << e.what();
  }
  auto ok = attached("{}");
  EXPECT_THROW(score_map(*ok, at::randn({2, 128})), ShapeError);
  EXPECT_THROW(score_map(*ok, at::randn({2, 64, 8, 8})), ShapeError);  // the model has 128 channels
  auto lone = make_detector("ash");
  EXPECT_THROW(score_map(*lone, permuted_map()), StateError);  // no model: no path to the logits
  EXPECT_TRUE(ok->state().empty());
  EXPECT_NO_THROW(ok->load_state(TensorDict()));
}

}  // namespace
}  // namespace ood::test
