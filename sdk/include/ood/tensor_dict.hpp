#pragma once
// An ordered name -> tensor map: the shape of a PyTorch state dict and of a
// detector's fitted state. Order is kept because PyTorch keeps it and because files
// written from it should list tensors in a stable order.
#include <ATen/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "ood/export.hpp"

namespace ood {

class OOD_SDK_API TensorDict {
 public:
  using Entry = std::pair<std::string, at::Tensor>;

  /// Appends or replaces `name` (replacing keeps the original position).
  void set(const std::string& name, at::Tensor tensor);
  /// The tensor stored under `name`; throws ood::Error naming the key when absent.
  const at::Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
  /// Removes `name` if present; returns whether it was there.
  bool erase(const std::string& name);
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<std::string> keys() const;

  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  const Entry* find(const std::string& name) const;
  std::vector<Entry> entries_;
};

}  // namespace ood
