#pragma once
// The Detector interface: turns a batch's views into outlier scores (larger = more
// likely out-of-distribution), optionally after fitting on in-distribution data.
#include <ATen/Tensor.h>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

class Views;

/// What a detector needs; the evaluator uses it to plan forward passes and fitting.
struct DetectorNeeds {
  bool logits = false;
  bool features = false;
  bool linear_head = false;       // the model's last-layer weights (DICE, ViM)
  bool input_gradients = false;   // gradients w.r.t. the input (ODIN, Mahalanobis eps > 0)
  bool stochastic_passes = false; // repeated forwards with dropout on (MCD)
  bool fit = false;               // must see fitting data before scoring
  bool fit_labels = false;        // fitting uses the labels of the fitting data
};

class OOD_SDK_API Detector {
 public:
  virtual ~Detector();

  virtual DetectorNeeds needs() const = 0;

  /// Consumes one batch of fitting data (labels: [N], < 0 for OOD samples). The
  /// default throws ood::StateError: the detector does not fit.
  virtual void fit_batch(Views& views, const at::Tensor& labels);
  /// Called once after the last fitting batch; computes the fitted state.
  virtual void finish_fit();
  /// Whether score() may be called (always true for detectors that do not fit).
  virtual bool is_fitted() const;

  /// Outlier scores, [N] for classification (larger = more OOD).
  virtual at::Tensor score(Views& views) = 0;

  /// The fitted state, as named tensors (empty for detectors that do not fit).
  virtual TensorDict state() const;
  /// Restores a state returned by state(). The default accepts only an empty state.
  virtual void load_state(const TensorDict& state);
};

}  // namespace ood
