#pragma once
// The Detector interface: turns a batch's views into outlier scores (larger = more
// likely out-of-distribution), optionally after fitting on in-distribution data.
#include <ATen/Tensor.h>

#include <string>
#include <vector>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

class Model;
class Views;

/// What a detector needs. The host checks it against the model when a pipeline is
/// built (a detector needing a view the model lacks is refused, naming both) and uses
/// it to plan each batch: every layer any detector needs is computed in one pass.
struct DetectorNeeds {
  bool logits = false;
  bool features = false;
  bool linear_head = false;       // the model's last-layer weights (DICE, ViM, ReAct)
  bool feature_map = false;       // the map before global pooling and the path on (ASH)
  bool input_gradients = false;   // own forwards with gradients w.r.t. the input (ODIN, ...)
  bool stochastic_passes = false; // repeated forwards with dropout on (MCD)
  bool fit = false;               // must see fitting data before scoring
  bool fit_labels = false;        // fitting uses the labels of the fitting data
  std::vector<std::string> layers;// intermediate layers by the model's module names
};

class OOD_SDK_API Detector {
 public:
  virtual ~Detector();

  virtual DetectorNeeds needs() const = 0;

  /// Called once when the pipeline is built, after the model and before any state is
  /// loaded: the place to check parameters against the model (ViM's d against the
  /// feature size, layer names, ...) and to remember its sizes. Throws
  /// ood::InvalidArgument naming the parameter's pointer. The default does nothing.
  virtual void attach(Model& model);

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
