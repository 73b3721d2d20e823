#pragma once
// Views: what a detector may look at for one batch.
//
// The evaluator creates one Views per batch and hands the same object to every
// detector. Each view is computed on first use and cached, so ten logit-based
// detectors cost one forward pass (pytorch-ood runs the model once per detector).
#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

class Model;

class OOD_SDK_API Views {
 public:
  /// Views of `inputs` through `model`. With `track_gradients` false (evaluation)
  /// views are computed without autograd; training passes true.
  Views(Model& model, at::Tensor inputs, bool track_gradients = false);
  /// Views without a model, from precomputed tensors (offline scoring, tests); asking
  /// for a view that was not given throws ood::StateError.
  Views();
  ~Views();
  Views(const Views&) = delete;
  Views& operator=(const Views&) = delete;

  /// The batch of model inputs (after transforms).
  const at::Tensor& inputs() const;
  /// Penultimate features [N, D], computed once. For a model with a feature map they
  /// are pooled from feature_map(), so asking for both costs one forward.
  const at::Tensor& features();
  /// Logits [N, C], computed once from features() through the model's head.
  const at::Tensor& logits();
  /// The feature map before global pooling [N, C, H, W], computed once (ASH).
  const at::Tensor& feature_map();
  /// The output of one intermediate layer (a module name of the model), computed once.
  /// Layers announced with `prefetch_layers` come from one partial forward together.
  const at::Tensor& layer(const std::string& name);
  /// Computes every layer in `names` that is not cached yet in one partial forward
  /// (the evaluator announces the union of all detectors' layers this way).
  void prefetch_layers(const std::vector<std::string>& names);
  /// The model, for methods that need more than the cached views (input gradients,
  /// repeated stochastic passes, the linear head). Throws ood::StateError without one.
  Model& model() const;
  bool has_model() const { return model_ != nullptr; }
  std::int64_t batch_size() const;

  /// Supplies a view computed elsewhere (a cached feature file, a test fixture).
  void set_inputs(at::Tensor inputs);
  void set_features(at::Tensor features);
  void set_logits(at::Tensor logits);
  void set_feature_map(at::Tensor feature_map);
  void set_layer(const std::string& name, at::Tensor output);

 private:
  Model* model_ = nullptr;
  bool track_gradients_ = false;
  std::optional<at::Tensor> inputs_;
  std::optional<at::Tensor> features_;
  std::optional<at::Tensor> logits_;
  std::optional<at::Tensor> feature_map_;
  TensorDict layers_;
};

}  // namespace ood
