#pragma once
// Internal: the data.pkl of a dict of tensors, opcode for opcode what Python's
// torch.save (protocol 2) writes for one, so that any torch.load accepts it,
// including torch.load(..., weights_only=True), which refuses LibTorch's own
// pickler output (its `torch.jit._pickle.restore_type_tag` global).
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace ood::io::detail {

/// `entries[i].second` must be a dense CPU tensor whose storage is exactly its
/// elements in row-major order, with a dtype storage_type_name() knows; its
/// storage is persistent id `i` (zip record `data/<i>`).
std::string pickle_tensor_dict(const std::vector<std::pair<std::string, at::Tensor>>& entries);

}  // namespace ood::io::detail
