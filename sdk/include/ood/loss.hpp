#pragma once
// The Loss interface used by training: a criterion over a batch's views and targets
// (OOD targets < 0 where the method trains with outliers).
#include <ATen/Tensor.h>

#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood {

class Views;

class OOD_SDK_API Loss {
 public:
  virtual ~Loss();
  /// The loss of one batch; views are computed with autograd enabled.
  virtual at::Tensor forward(Views& views, const at::Tensor& targets) = 0;
  /// Learnable parameters of the loss itself (class centres, ...), trained with the model.
  virtual std::vector<at::Tensor> parameters();
};

}  // namespace ood
