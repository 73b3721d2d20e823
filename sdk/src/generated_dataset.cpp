#include "ood/generated_dataset.hpp"

#include <ATen/ATen.h>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood {

GeneratedDataset::GeneratedDataset(std::int64_t size, std::vector<std::int64_t> shape, std::uint64_t seed,
                                   std::int64_t label, Draw draw)
    : size_(size), shape_(std::move(shape)), seed_(seed), label_(label), draw_(std::move(draw)) {}

GeneratedDataset::~GeneratedDataset() = default;

std::int64_t GeneratedDataset::size() const { return size_; }

Sample GeneratedDataset::get(std::int64_t index) const {
  if (index < 0 || index >= size_)
    throw InvalidArgument("generated dataset: index " + std::to_string(index) + " out of range [0, " +
                          std::to_string(size_) + ")");
  at::Generator generator = make_generator(mix_seed(seed_, static_cast<std::uint64_t>(index)));
  at::Tensor input = draw_(generator);
  if (!input.sizes().equals(shape_))
    throw ShapeError("generated dataset: drew " + describe_tensor(input) + " for a declared shape of " +
                     std::to_string(shape_.size()) + " dims");
  return {std::move(input), at::scalar_tensor(label_, at::kLong)};
}

DatasetInfo GeneratedDataset::info() const {
  DatasetInfo i;
  i.input_shape = shape_;
  return i;
}

at::Tensor GeneratedDataset::labels() const { return at::full({size_}, label_, at::kLong); }

}  // namespace ood
