#pragma once
// Input checks shared by components, raising ood::ShapeError with messages that name
// the component and the tensor, e.g.
//   "max-softmax: logits must be a 2-D floating tensor [N, C], got Long [4]".
#include <ATen/Tensor.h>

#include <string_view>

#include "ood/export.hpp"

namespace ood {

/// Requires a floating tensor with `dims` dimensions (and `min_size1` columns at least
/// when dims >= 2). `shape_hint` describes the expected shape, e.g. "[N, C]".
OOD_SDK_API void require_floating(const at::Tensor& tensor, std::string_view component,
                                  std::string_view what, std::int64_t dims,
                                  std::string_view shape_hint);

/// "Long [4, 10]": a tensor's dtype (LibTorch's name) and shape, for messages.
OOD_SDK_API std::string describe_tensor(const at::Tensor& tensor);

}  // namespace ood
