#pragma once
// The ConfidenceLoss formula of DeVries & Taylor (2018), shared by the plugin
// (confidence.cpp) and its tests: a function of logits [N, C], confidences c [N] in
// [0, 1] and targets [N] (< 0 = OOD):
//
//   p'_i   = c_i * softmax(z_i) + (1 - c_i) * onehot(y_i)          (IN rows)
//   nll    = (1/N) sum_{i: y_i >= 0} -log(clamp(p'_i[y_i], eps, 1))
//   conf   = (1/N) sum_i -log(clamp(c_i, eps, 1))                  (all rows)
//   loss   = nll + alpha * conf
//
// Both terms are means over the batch, as in the paper (pytorch-ood sums the NLL part
// over the IN rows and returns a constant 0 of shape [1] for a batch without IN rows).
#include <ATen/ATen.h>

namespace ood_confidence {

inline at::Tensor confidence_loss(const at::Tensor& logits, const at::Tensor& confidence, const at::Tensor& targets,
                                  double alpha, double eps) {
  const at::Tensor c = confidence.reshape({-1});
  const at::Tensor y = targets.to(logits.device(), at::kLong);
  const at::Tensor known = y >= 0;
  const double n = static_cast<double>(logits.size(0));
  const at::Tensor p_target = at::softmax(logits, 1).gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
  const at::Tensor adjusted = c * p_target + (1 - c);  // onehot(y) at the target is 1
  const at::Tensor nll_rows = -at::log(adjusted.clamp(eps, 1.0));
  const at::Tensor nll = at::where(known, nll_rows, at::zeros_like(nll_rows)).sum() / n;
  const at::Tensor conf = (-at::log(c.clamp(eps, 1.0))).sum() / n;
  return nll + alpha * conf;
}

}  // namespace ood_confidence
