// Samples from tensors saved with torch.save: a dict holding an inputs tensor [N, ...]
// and a labels tensor [N] under the given keys (both zip and legacy files).
#include <ATen/ATen.h>

#include "ood/checks.hpp"
#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

at::Tensor tensor_entry(const c10::IValue& file_content, const std::string& key, const fs::path& file) {
  if (!file_content.isGenericDict())
    throw ood::FileError(file.string() + ": expected a dict of tensors (torch.save({...}, file))");
  const auto dict = file_content.toGenericDict();
  std::string keys;
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == key) {
      if (!entry.value().isTensor())
        throw ood::FileError(file.string() + ": entry '" + key + "' is not a tensor");
      return entry.value().toTensor();
    }
    if (entry.key().isString()) keys += (keys.empty() ? "" : ", ") + entry.key().toStringRef();
  }
  throw ood::FileError(file.string() + ": no entry '" + key + "' (it has: " + keys + ")");
}

class TensorFile final : public ood::Dataset {
 public:
  TensorFile(const fs::path& file, const std::string& inputs_key, const std::string& labels_key) {
    const c10::IValue content = ood::io::load_torch_file(file);
    inputs_ = tensor_entry(content, inputs_key, file);
    labels_ = tensor_entry(content, labels_key, file);
    if (inputs_.dim() < 1 || inputs_.size(0) == 0)
      throw ood::FileError(file.string() + ": '" + inputs_key + "' must be a non-empty tensor [N, ...], got " +
                           ood::describe_tensor(inputs_));
    if (!at::isFloatingType(inputs_.scalar_type()))
      throw ood::FileError(file.string() + ": '" + inputs_key + "' must be floating, got " +
                           ood::describe_tensor(inputs_));
    if (labels_.dim() != 1 || at::isFloatingType(labels_.scalar_type()) || at::isComplexType(labels_.scalar_type()) ||
        labels_.scalar_type() == at::kBool)
      throw ood::FileError(file.string() + ": '" + labels_key + "' must be an integer tensor [N], got " +
                           ood::describe_tensor(labels_));
    if (labels_.size(0) != inputs_.size(0))
      throw ood::FileError(file.string() + ": " + std::to_string(labels_.size(0)) + " labels in '" + labels_key +
                           "' for " + std::to_string(inputs_.size(0)) + " inputs in '" + inputs_key + "'");
    // Models run in float32; contiguous storage makes every get() a cheap view.
    inputs_ = inputs_.to(at::kFloat).contiguous();
    labels_ = labels_.to(at::kLong).contiguous();
  }

  std::int64_t size() const override { return inputs_.size(0); }
  ood::Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw ood::InvalidArgument("tensor-file: index " + std::to_string(index) + " out of range");
    return {inputs_[index], labels_[index]};
  }
  ood::DatasetInfo info() const override {
    ood::DatasetInfo i;
    i.modality = ood::Modality::Tensor;
    i.input_shape = inputs_.sizes().slice(1).vec();
    return i;
  }
  at::Tensor labels() const override { return labels_.clone(); }

 private:
  at::Tensor inputs_;
  at::Tensor labels_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "tensor-file";
  info.summary = "inputs and labels from a dict saved with torch.save";
  info.doc =
      "The file holds a dict (torch.save({...}, path), zip or legacy format) with an inputs\n"
      "tensor [N, ...] (floating; converted to float32) and a labels tensor [N] (integers;\n"
      "labels < 0 mark OOD samples).";
  info.params = {
      ood::ParamSpec::path("path", "the .pt file"),
      ood::ParamSpec::string("inputs", "key of the inputs tensor").default_value("inputs"),
      ood::ParamSpec::string("labels", "key of the labels tensor").default_value("labels"),
  };
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<TensorFile>(p.get_path("path"), p.get_string("inputs"), p.get_string("labels"));
  });
}

}  // namespace

OOD_PLUGIN("tensor-file", "Tensors from a torch.save file", register_components)
