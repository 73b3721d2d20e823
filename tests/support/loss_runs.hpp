#pragma once
// Running a loss in a test the way training does (through Views, with autograd) on a
// given embedding, and the values and gradients that come out.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iomanip>
#include <sstream>
#include <string>

#include "ood/loss.hpp"
#include "ood/views.hpp"

namespace ood::test {

/// The loss (detached) on a fresh leaf copy of `z`, given as the logits view (or as the
/// features view with `as_features`). With `grad`, the value (its sum when it is not a
/// scalar) is backpropagated and the gradient with respect to z is stored there.
inline at::Tensor loss_value_and_grad(Loss& loss, const at::Tensor& z, const at::Tensor& targets, at::Tensor* grad,
                                      bool as_features = false) {
  at::Tensor leaf = z.detach().clone().requires_grad_(true);
  Views views;
  if (as_features)
    views.set_features(leaf);
  else
    views.set_logits(leaf);
  at::Tensor value = loss.forward(views, targets);
  if (grad) {
    (value.dim() == 0 ? value : value.sum()).backward();
    *grad = leaf.grad();
  }
  return value.detach();
}

struct LossRun {
  at::Tensor value;       // detached
  at::Tensor grad;        // with respect to the embedding
  at::Tensor grad_param;  // of the loss's first parameter (class centres, ...); undefined without
};

/// One forward and backward as loss_value_and_grad, after zeroing the gradients of the
/// loss's own parameters, whose first one's gradient is returned too (a copy).
inline LossRun run_loss(Loss& loss, const at::Tensor& z, const at::Tensor& targets, bool as_features = false) {
  for (auto& p : loss.parameters())
    if (p.grad().defined()) p.mutable_grad().zero_();
  LossRun r;
  r.value = loss_value_and_grad(loss, z, targets, &r.grad, as_features);
  const auto params = loss.parameters();
  if (!params.empty() && params[0].grad().defined()) r.grad_param = params[0].grad().clone();
  return r;
}

/// Expects the autograd gradient of `loss` with respect to the float64 `logits` to equal
/// central finite differences (step 1e-6) element by element, within `tolerance`; `what`
/// prefixes the failure messages.
inline void expect_gradient_matches_finite_differences(Loss& loss, const at::Tensor& logits, const at::Tensor& targets,
                                                       double tolerance, const std::string& what = "") {
  at::Tensor grad;
  loss_value_and_grad(loss, logits, targets, &grad);
  const double h = 1e-6;
  for (int64_t i = 0; i < logits.numel(); ++i) {
    at::Tensor up = logits.clone(), down = logits.clone();
    up.view(-1)[i] += h;
    down.view(-1)[i] -= h;
    const double fd = (loss_value_and_grad(loss, up, targets, nullptr).item<double>() -
                       loss_value_and_grad(loss, down, targets, nullptr).item<double>()) / (2 * h);
    EXPECT_NEAR(grad.view(-1)[i].item<double>(), fd, tolerance) << what << i;
  }
}

/// A tensor as a JSON list of float32 numbers (9 significant digits: exact for float32),
/// for parameters such as a centre.
inline std::string json_list(const at::Tensor& t) {
  std::ostringstream os;
  os << std::setprecision(9) << "[";
  const at::Tensor f = t.reshape(-1).to(at::kFloat);
  for (std::int64_t i = 0; i < f.numel(); ++i) os << (i ? ", " : "") << f[i].item<float>();
  os << "]";
  return os.str();
}

}  // namespace ood::test
