#include "ood/data/array_dataset.hpp"

#include <ATen/ATen.h>

#include <utility>

#include "ood/checks.hpp"
#include "ood/error.hpp"

namespace ood::data {

namespace {

const char* layout_name(ArrayLayout layout) {
  switch (layout) {
    case ArrayLayout::NHWC: return "NHWC [N, H, W, C]";
    case ArrayLayout::NCHW: return "NCHW [N, C, H, W]";
    case ArrayLayout::NHW: return "NHW [N, H, W]";
  }
  return "?";
}

class ArrayDataset final : public Dataset {
 public:
  ArrayDataset(at::Tensor images, at::Tensor labels, ArrayDatasetOptions options)
      : images_(std::move(images)), labels_(std::move(labels)), options_(std::move(options)) {}

  std::int64_t size() const override { return images_.size(0); }

  Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw InvalidArgument(options_.dataset + ": index " + std::to_string(index) + " out of range [0, " +
                            std::to_string(size()) + ")");
    at::Tensor image = images_[index];
    if (options_.layout == ArrayLayout::NHWC) image = image.permute({2, 0, 1});
    if (options_.layout == ArrayLayout::NHW) image = image.unsqueeze(0);
    // As torchvision's ToTensor: contiguous, float32, then one division (skipped for
    // scale 1 so that float data passes through unchanged).
    image = image.contiguous().to(at::kFloat);
    if (options_.scale != 1.0) image = image.div_(options_.scale);
    return {std::move(image), labels_[index].clone()};
  }

  DatasetInfo info() const override {
    DatasetInfo info;
    info.classes = options_.classes;
    info.task = Task::Classification;
    info.modality = Modality::Image;
    switch (options_.layout) {
      case ArrayLayout::NHWC: info.input_shape = {images_.size(3), images_.size(1), images_.size(2)}; break;
      case ArrayLayout::NCHW: info.input_shape = {images_.size(1), images_.size(2), images_.size(3)}; break;
      case ArrayLayout::NHW: info.input_shape = {1, images_.size(1), images_.size(2)}; break;
    }
    return info;
  }

  at::Tensor labels() const override { return labels_.clone(); }

 private:
  at::Tensor images_;  // contiguous, as given
  at::Tensor labels_;  // int64 [N]
  ArrayDatasetOptions options_;
};

}  // namespace

std::shared_ptr<Dataset> array_dataset(at::Tensor images, at::Tensor labels, const ArrayDatasetOptions& options) {
  const std::string& name = options.dataset;
  if (!images.defined() || !labels.defined()) throw FileError(name + ": images or labels are missing");
  if (images.scalar_type() != at::kByte && !at::isFloatingType(images.scalar_type()))
    throw FileError(name + ": images must be uint8 or floating point, got " + describe_tensor(images));
  const std::int64_t expected_dims = options.layout == ArrayLayout::NHW ? 3 : 4;
  if (images.dim() != expected_dims)
    throw FileError(name + ": images " + describe_tensor(images) + " do not fit the layout " +
                    layout_name(options.layout));
  for (std::int64_t d = 1; d < images.dim(); ++d)
    if (images.size(d) == 0) throw FileError(name + ": images " + describe_tensor(images) + " have an empty dimension");
  if (labels.dim() != 1 || (!at::isIntegralType(labels.scalar_type(), /*includeBool=*/false)))
    throw FileError(name + ": labels must be a 1-D integer tensor [N], got " + describe_tensor(labels));
  if (labels.size(0) != images.size(0))
    throw FileError(name + ": " + std::to_string(labels.size(0)) + " labels for " + std::to_string(images.size(0)) +
                    " images");
  if (images.size(0) == 0) throw FileError(name + ": no images");
  if (!(options.scale > 0.0)) throw InvalidArgument(name + ": scale must be positive, got " + std::to_string(options.scale));
  // Contiguous once here rather than per sample (a transposed .mat array would otherwise
  // gather strided memory for every get()).
  return std::make_shared<ArrayDataset>(images.contiguous(), labels.to(at::kLong).contiguous(), options);
}

}  // namespace ood::data
