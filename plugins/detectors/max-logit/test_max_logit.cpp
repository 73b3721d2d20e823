// Parity of max-logit with pytorch-ood's MaxLogit (tests/fixtures/reference).
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

TEST(MaxLogit, MatchesPytorchOod) {
  const auto fx = load_tensor_dict_file("reference/detectors/maxlogit.pt");
  auto det = make_detector("max-logit");
  for (const char* side : {"in", "out"}) {
    const at::Tensor logits = tensor_of(reference_data(), std::string("logits_") + side);
    EXPECT_TRUE(all_close(score_logits(*det, logits), tensor_of(fx, std::string("scores_") + side), 1e-5, 1e-6));
  }
  // Edge logits: exact (see maxlogit.json).
  EXPECT_TRUE(all_close(score_logits(*det, tensor_of(fx, "edge_logits")), tensor_of(fx, "edge_scores"), 0, 0));
}

TEST(MaxLogit, TakesNoParameters) {
  EXPECT_THROW(make_detector("max-logit", R"({"t": 1.0})"), InvalidArgument);
}

TEST(MaxLogit, RefusesBadInput) {
  auto det = make_detector("max-logit");
  EXPECT_THROW(score_logits(*det, at::Tensor()), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({5})), ShapeError);
}

}  // namespace
}  // namespace ood::test
