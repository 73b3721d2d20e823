#pragma once
// The Dataset interface: random access to samples, safe to call from several loader
// threads at once.
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood {

/// One sample. `target` is a 0-dim int64 class label for classification (< 0 marks
/// an OOD sample, as in pytorch-ood) and a label map for segmentation.
struct OOD_SDK_API Sample {
  at::Tensor input;
  at::Tensor target;
  /// The class label of a classification sample.
  std::int64_t label() const;
};

enum class Task { Classification, Segmentation, AnomalyDetection };
enum class Modality { Image, Text, Audio, Tensor };

struct DatasetInfo {
  /// Class names indexed by label (may be empty when unknown).
  std::vector<std::string> classes;
  Task task = Task::Classification;
  Modality modality = Modality::Image;
  /// Shape of every input without the batch dimension, empty when it varies.
  std::vector<std::int64_t> input_shape;
};

class OOD_SDK_API Dataset {
 public:
  virtual ~Dataset();
  virtual std::int64_t size() const = 0;
  /// Sample `index` in [0, size()). Must be thread-safe and deterministic: the same
  /// index gives the same sample whatever the order of calls.
  virtual Sample get(std::int64_t index) const = 0;
  virtual DatasetInfo info() const = 0;
  /// All classification labels as an int64 tensor [size()], without decoding inputs.
  /// The default calls get() for every index; datasets override it when cheaper.
  virtual at::Tensor labels() const;
};

}  // namespace ood
