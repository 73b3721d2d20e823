// Parity of max-softmax with pytorch-ood's MaxSoftmax (tests/fixtures/reference).
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_msp() {
  static const auto d = load_tensor_dict_file("reference/detectors/maxsoftmax.pt");
  return d;
}

TEST(MaxSoftmax, MatchesPytorchOodOnReferenceLogits) {
  // key t1: t = 1.0, key t: t = 2.0 (see maxsoftmax.json).
  for (const auto& [key, params] : {std::pair<std::string, std::string>{"t1", R"({"t": 1.0})"},
                                    std::pair<std::string, std::string>{"t", R"({"t": 2.0})"}}) {
    auto det = make_detector("max-softmax", params);
    for (const char* side : {"in", "out"}) {
      const at::Tensor logits = tensor_of(reference_data(), std::string("logits_") + side);
      EXPECT_TRUE(all_close(score_logits(*det, logits), tensor_of(fixture_msp(), "scores_" + key + "_" + side),
                            1e-5, 1e-6))
          << key << " " << side;
    }
  }
}

TEST(MaxSoftmax, ScoresLieInMinusOneToMinusOneOverC) {
  auto det = make_detector("max-softmax");
  const at::Tensor s = score_logits(*det, at::randn({64, 10}) * 5);
  EXPECT_TRUE((s <= -0.1 + 1e-6).all().item<bool>());
  EXPECT_TRUE((s >= -1.0).all().item<bool>());
}

TEST(MaxSoftmax, RefusesBadInput) {
  auto det = make_detector("max-softmax");
  EXPECT_THROW(score_logits(*det, at::ones({3})), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({3, 2}, at::kInt)), ShapeError);
  EXPECT_THROW(make_detector("max-softmax", R"({"t": 0.0})"), InvalidArgument);
  EXPECT_THROW(make_detector("max-softmax", R"({"temperature": 2.0})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
