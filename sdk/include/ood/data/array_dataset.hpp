#pragma once
// A dataset over images held in one uint8 array (CIFAR batches, .npy/.npz, .mat):
// samples are the array's images converted like torchvision's ToTensor.
#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ood/dataset.hpp"
#include "ood/export.hpp"

namespace ood::data {

enum class ArrayLayout { NHWC, NCHW, NHW };

struct ArrayDatasetOptions {
  std::string dataset;               // component name, for messages
  ArrayLayout layout = ArrayLayout::NHWC;
  std::vector<std::string> classes;  // DatasetInfo::classes
  /// Values are divided by this (255 for uint8 pixels; 1 for data already in [0, 1]).
  double scale = 255.0;
};

/// `images`: uint8 (or float) [N, H, W, C], [N, C, H, W] or [N, H, W]; `labels`:
/// int64 [N] (any integer type is converted). get(i) gives float32 [C, H, W] (C = 1 for
/// NHW) divided by `scale`, and labels[i]. Throws ood::FileError naming the dataset when
/// the shapes do not fit each other or the layout.
OOD_SDK_API std::shared_ptr<Dataset> array_dataset(at::Tensor images, at::Tensor labels,
                                                   const ArrayDatasetOptions& options);

}  // namespace ood::data
