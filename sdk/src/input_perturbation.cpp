#include "ood/input_perturbation.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/params.hpp"

namespace ood {

InputPerturbation::InputPerturbation(double eps, std::vector<double> norm_std, std::string norm_std_pointer)
    : eps_(eps), norm_std_(std::move(norm_std)), norm_std_pointer_(std::move(norm_std_pointer)) {}

InputPerturbation InputPerturbation::from_params(const Params& params) {
  std::vector<double> norm_std;
  if (params.has("norm_std")) norm_std = params.get_float_list("norm_std");
  return InputPerturbation(params.get_float("eps"), std::move(norm_std), params.pointer("norm_std"));
}

ParamSpec InputPerturbation::norm_std_param(const std::string& step) {
  return ParamSpec::list("norm_std", ParamType::Float,
                         "per-channel standard deviations of the input normalisation; " + step +
                             " of each channel is divided by its value")
      .optional()
      .items(1)
      .min(0.0, true);
}

void InputPerturbation::check_model(const ModelInfo& info) const {
  const auto k = static_cast<std::int64_t>(norm_std_.size());
  if (!norm_std_.empty() && !info.input_shape.empty() && info.input_shape[0] > 0 && info.input_shape[0] != k)
    throw InvalidArgument(norm_std_pointer_ + ": " + std::to_string(k) + " values for a model with " +
                          std::to_string(info.input_shape[0]) + " input channels");
}

at::Tensor InputPerturbation::apply(const at::Tensor& inputs, const std::function<at::Tensor(const at::Tensor&)>& loss,
                                    std::string_view who) const {
  const auto k = static_cast<std::int64_t>(norm_std_.size());
  if (!norm_std_.empty() && (inputs.dim() < 2 || inputs.size(1) != k))
    throw ShapeError(std::string(who) + ": norm_std has " + std::to_string(k) + " values, the inputs are " +
                     describe_tensor(inputs));
  at::AutoGradMode enable(true);
  const at::Tensor x = inputs.detach().clone().requires_grad_(true);
  const at::Tensor grad = torch::autograd::grad({loss(x)}, {x})[0];
  at::Tensor step = grad.sign();
  if (!norm_std_.empty()) {
    std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
    shape[1] = k;
    step = step / at::tensor(norm_std_, at::kDouble).to(x.device(), x.scalar_type()).view(shape);
  }
  return (x.detach() - eps_ * step).detach();
}

}  // namespace ood
