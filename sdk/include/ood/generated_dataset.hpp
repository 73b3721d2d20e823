#pragma once
// A dataset of generated samples (noise, synthetic images): sample i is drawn from its
// own generator seeded by (seed, i), so it is the same whatever the order of reads or
// the number of loader threads. Every sample carries the same label (-1 for outliers).
#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "ood/dataset.hpp"
#include "ood/export.hpp"

namespace ood {

class OOD_SDK_API GeneratedDataset : public Dataset {
 public:
  /// `draw` makes one input of `shape` from the generator it is given.
  using Draw = std::function<at::Tensor(at::Generator& generator)>;
  GeneratedDataset(std::int64_t size, std::vector<std::int64_t> shape, std::uint64_t seed, std::int64_t label,
                   Draw draw);
  ~GeneratedDataset() override;

  std::int64_t size() const override;
  Sample get(std::int64_t index) const override;
  DatasetInfo info() const override;
  at::Tensor labels() const override;

 private:
  std::int64_t size_;
  std::vector<std::int64_t> shape_;
  std::uint64_t seed_;
  std::int64_t label_;
  Draw draw_;
};

}  // namespace ood
