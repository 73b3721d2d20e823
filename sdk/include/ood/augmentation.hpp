#pragma once
// The Augmentation interface: a per-sample transform. Deterministic transforms
// (normalize, resize) ignore the generator; random ones draw from it only, so a
// seeded loader reproduces the same augmented samples in any thread order.
#include <ATen/core/Generator.h>

#include "ood/dataset.hpp"
#include "ood/export.hpp"

namespace ood {

class OOD_SDK_API Augmentation {
 public:
  virtual ~Augmentation();
  /// Transforms one sample. Must be thread-safe (const, no shared mutable state).
  virtual Sample apply(Sample sample, at::Generator& generator) const = 0;
};

}  // namespace ood
