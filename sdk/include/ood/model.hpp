#pragma once
// The Model interface: a classifier split into a feature extractor and a head, so that
// detectors can use the penultimate features, the logits, and the head's weights
// without running the network more than once.
#include <ATen/Device.h>
#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

/// The weights of a linear last layer, logits = features @ weight.T + bias
/// (DICE and ViM need them).
struct LinearHead {
  at::Tensor weight;  // [num_classes, feature_dim]
  at::Tensor bias;    // [num_classes]
};

/// How the network behaves during a forward pass.
enum class ModelMode {
  Eval,       // dropout off, batch norm uses running statistics
  Train,      // dropout on, batch norm uses and updates batch statistics
  McDropout,  // dropout on, batch norm in eval mode (Monte-Carlo dropout)
};

struct ModelInfo {
  std::int64_t num_classes = 0;
  std::int64_t feature_dim = 0;
  /// Expected input shape without the batch dimension, e.g. {3, 32, 32}; entries of
  /// -1 mean "any size".
  std::vector<std::int64_t> input_shape;
};

class OOD_SDK_API Model {
 public:
  virtual ~Model();

  /// Penultimate features [N, feature_dim] of a batch of inputs.
  virtual at::Tensor features(const at::Tensor& inputs) = 0;
  /// Logits [N, num_classes] from features. `logits(x) == head(features(x))`.
  virtual at::Tensor head(const at::Tensor& features) = 0;
  /// Logits of a batch of inputs. The default runs features() then head().
  virtual at::Tensor logits(const at::Tensor& inputs);
  /// Whether features() works (a TorchScript module may only have forward).
  virtual bool has_features() const { return true; }
  /// Whether logits(x) == head(features(x)), so that Views derives the logits from the
  /// cached features (one forward). When false, Views calls logits() itself.
  virtual bool logits_from_features() const { return true; }

  /// The last layer's weights when the head is one linear layer.
  virtual std::optional<LinearHead> linear_head() { return std::nullopt; }
  /// Names of the intermediate layers `intermediate()` can return: the PyTorch module
  /// names of the corresponding network ("conv1", "block1", "layer3", ...).
  virtual std::vector<std::string> layer_names() const { return {}; }
  /// Outputs of the named intermediate layers for a batch, in one partial forward. The
  /// default throws ood::NotSupported.
  virtual TensorDict intermediate(const at::Tensor& inputs, const std::vector<std::string>& layers);

  /// Whether the network ends in "feature map -> global pooling -> head", so that
  /// `features_before_pool` and `pool` exist (ASH shapes the map before pooling).
  virtual bool has_feature_map() const { return false; }
  /// The feature map before global pooling [N, C, H, W]. Default: ood::NotSupported.
  virtual at::Tensor features_before_pool(const at::Tensor& inputs);
  /// Penultimate features from a (possibly modified) feature map, so that
  /// `features(x) == pool(features_before_pool(x))` and the logits of a modified map
  /// are `head(pool(map))`. Default: ood::NotSupported.
  virtual at::Tensor pool(const at::Tensor& feature_map);
  /// Logits of a (possibly modified) feature map. Default: head(pool(map)); a model
  /// with its own path from the map (TorchScript's forward_from_before_pool) overrides it.
  virtual at::Tensor logits_from_feature_map(const at::Tensor& feature_map);

  virtual void set_mode(ModelMode mode) = 0;
  virtual ModelMode mode() const = 0;
  virtual void to(at::Device device) = 0;
  virtual at::Device device() const = 0;

  /// Trainable parameters (tensors that require grad), in a stable order.
  virtual std::vector<at::Tensor> parameters() = 0;
  /// Every parameter and buffer under its PyTorch name (compatible with
  /// `module.state_dict()` of the corresponding PyTorch model).
  virtual TensorDict state_dict() const = 0;
  /// Loads a PyTorch-compatible state dict. Strict: a missing, unexpected or
  /// wrongly-shaped entry throws ood::InvalidArgument listing them.
  virtual void load_state_dict(const TensorDict& state) = 0;

  virtual ModelInfo info() const = 0;

  /// The views a detector may need beyond the logits.
  enum class View { Features, LinearHead, FeatureMap };
  /// Why `view` is unavailable, when has_features(), linear_head() or has_feature_map()
  /// says so: what the model would need (TorchScript: the missing method), for the
  /// error when a pipeline is built. "" (the default): the architecture lacks it.
  virtual std::string missing_view(View view) const;
};

}  // namespace ood
