#pragma once
// The input step of ODIN and of the Mahalanobis detectors (Liang et al.; Lee et al.):
//
//   x_hat = x - eps * sign(grad_x loss(x)) / norm_std[channel]
//
// where `loss` is the detector's own term (the cross-entropy at the predicted class, the
// Mahalanobis distance to the closest class mean, ...). Dividing by the per-channel
// standard deviation of the input normalisation makes the step eps in the unnormalised
// image, as pytorch-ood does.
#include <ATen/Tensor.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ood/export.hpp"

namespace ood {

class ParamSpec;
class Params;
struct ModelInfo;

class OOD_SDK_API InputPerturbation {
 public:
  /// `norm_std` may be empty (no division); `norm_std_pointer` names it in messages.
  InputPerturbation(double eps, std::vector<double> norm_std, std::string norm_std_pointer);
  /// From the parameters "eps" and "norm_std" (optional).
  static InputPerturbation from_params(const Params& params);
  /// The optional "norm_std" parameter; `step` names the step in its doc ("the step").
  static ParamSpec norm_std_param(const std::string& step);

  double eps() const { return eps_; }
  /// Whether there is a step at all (eps > 0).
  bool enabled() const { return eps_ > 0; }

  /// For Detector::attach: ood::InvalidArgument "<pointer>: K values for a model with C
  /// input channels" when the model declares another number of input channels.
  void check_model(const ModelInfo& info) const;

  /// x_hat (detached) for a batch of model inputs. `loss` maps a leaf copy of the inputs
  /// that requires grad to a scalar; it runs with autograd enabled whatever the caller's
  /// mode, and only the input gradient is computed. Throws ood::ShapeError "<who>: norm_std
  /// has K values, the inputs are ..." when the inputs have another number of channels.
  at::Tensor apply(const at::Tensor& inputs, const std::function<at::Tensor(const at::Tensor&)>& loss,
                   std::string_view who) const;

 private:
  double eps_;
  std::vector<double> norm_std_;
  std::string norm_std_pointer_;
};

}  // namespace ood
