// Entropy of the softmax distribution.
//
//   score(x) = -sum_c p_c log p_c,  p = softmax(f(x))
//
// Computed with log_softmax, so a probability that underflows to 0 contributes 0
// (its limit) instead of 0 * log 0 = NaN. pytorch-ood's Entropy computes
// p.log() and returns NaN for such rows; ood follows the definition (see
// tests/fixtures/reference/POLICY.md) and equals pytorch-ood wherever it is finite.
// Macedo, Ren, Zanchettin, Oliveira & Ludermir, "Entropic Out-of-Distribution
// Detection", IJCNN 2021.
#include <ATen/ATen.h>

#include "ood/logit_detector.hpp"
#include "ood/plugin.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = "entropy";
  info.summary = "entropy of the softmax, -sum p log p";
  info.paper =
      "Macedo, Ren, Zanchettin, Oliveira & Ludermir, Entropic Out-of-Distribution Detection, IJCNN";
  info.year = 2021;
  info.doc =
      "score = -sum_c p_c log p_c with p = softmax(logits), larger for outliers.\n"
      "Deviation from pytorch-ood: computed with log_softmax, so rows where a probability\n"
      "underflows to 0 give the finite, correct entropy instead of NaN.";
  registrar.add_detector(info, [](const ood::Params&, ood::Context&) {
    return std::make_shared<ood::LogitDetector>("entropy", [](const at::Tensor& logits) {
      const at::Tensor log_p = at::log_softmax(logits, 1);
      const at::Tensor p = log_p.exp();
      // p == 0 (also for a logit of -inf) contributes its limit 0, never 0 * -inf.
      return -at::where(p > 0, p * log_p, at::zeros_like(p)).sum(1);
    });
  });
}

}  // namespace

OOD_PLUGIN("entropy", "Softmax entropy detector", register_components)
