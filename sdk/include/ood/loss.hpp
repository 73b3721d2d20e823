#pragma once
// The Loss interface used by training: a criterion over a batch's views and targets
// (OOD targets < 0 where the method trains with outliers).
#include <ATen/Tensor.h>

#include <string>
#include <vector>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

class Model;
class Views;

class OOD_SDK_API Loss {
 public:
  virtual ~Loss();
  /// The loss of one batch; views are computed with autograd enabled.
  virtual at::Tensor forward(Views& views, const at::Tensor& targets) = 0;
  /// Learnable parameters of the loss itself (class centres, ...), trained with the model.
  /// Called after attach().
  virtual std::vector<at::Tensor> parameters();

  /// Called once when the pipeline is built, after the model and before training:
  /// take the sizes the model fixes (number of classes, embedding size) where a
  /// parameter is absent, check them where it is given (ood::InvalidArgument naming
  /// the parameter's pointer), and create the learnable parts. Default: nothing.
  virtual void attach(Model& model);

  /// Everything the loss learns or keeps (parameters and buffers such as running
  /// centres or feature queues) by name, for the checkpoint. Default: empty.
  virtual TensorDict state() const;
  /// Restores state() (resume, or a detector scoring with the trained loss). The
  /// default accepts only an empty state; ood::StateError for a wrong one.
  virtual void load_state(const TensorDict& state);
};

}  // namespace ood
