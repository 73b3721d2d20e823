// Entropy: parity with pytorch-ood's Entropy where it is finite, and the definition
// (not pytorch-ood's NaN) where a probability underflows (POLICY.md).
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const auto& fixture_entropy() {
  static const auto d = load_tensor_dict_file("reference/detectors/entropy.pt");
  return d;
}

TEST(Entropy, MatchesPytorchOodOnReferenceLogits) {
  auto det = make_detector("entropy");
  for (const char* side : {"in", "out"}) {
    const at::Tensor logits = tensor_of(reference_data(), std::string("logits_") + side);
    EXPECT_TRUE(all_close(score_logits(*det, logits), tensor_of(fixture_entropy(), std::string("scores_") + side),
                          1e-5, 1e-6))
        << side;
  }
}

TEST(Entropy, EqualsPytorchOodOnFiniteEdgeRowsAndTheDefinitionElsewhere) {
  auto det = make_detector("entropy");
  const at::Tensor logits = tensor_of(fixture_entropy(), "edge_logits");
  const at::Tensor expected = tensor_of(fixture_entropy(), "edge_scores");
  const at::Tensor scores = score_logits(*det, logits);
  ASSERT_TRUE(expected.isnan().any().item<bool>()) << "the fixture should contain pytorch-ood's NaN artefact";
  // The artefact is not reproduced: every score is finite...
  EXPECT_TRUE(scores.isfinite().all().item<bool>());
  // ...equal to pytorch-ood where it is finite...
  const at::Tensor finite = expected.isfinite();
  EXPECT_TRUE(all_close(scores.masked_select(finite), expected.masked_select(finite), 1e-5, 1e-6));
  // ...and equal to the float64 definition where pytorch-ood returns NaN.
  const at::Tensor p = at::softmax(logits.to(at::kDouble), 1);
  const at::Tensor exact = -at::where(p > 0, p * p.log(), at::zeros_like(p)).sum(1);
  EXPECT_TRUE(all_close(scores.masked_select(~finite), exact.masked_select(~finite).to(at::kFloat), 1e-5, 1e-6));
}

TEST(Entropy, UniformLogitsGiveLogC) {
  auto det = make_detector("entropy");
  const at::Tensor s = score_logits(*det, at::zeros({3, 7}));
  EXPECT_TRUE(all_close(s, at::full({3}, std::log(7.0)), 1e-6, 1e-6));
}

TEST(Entropy, RefusesBadInput) {
  auto det = make_detector("entropy");
  EXPECT_THROW(score_logits(*det, at::ones({2}, at::kFloat)), ShapeError);
  EXPECT_THROW(score_logits(*det, at::ones({2, 2}, at::kBool)), ShapeError);
}

}  // namespace
}  // namespace ood::test
