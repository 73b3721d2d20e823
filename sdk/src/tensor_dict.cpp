#include "ood/tensor_dict.hpp"

#include <algorithm>

#include "ood/error.hpp"

namespace ood {

const TensorDict::Entry* TensorDict::find(const std::string& name) const {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.first == name; });
  return it == entries_.end() ? nullptr : &*it;
}

void TensorDict::set(const std::string& name, at::Tensor tensor) {
  if (const Entry* existing = find(name)) {
    const_cast<Entry*>(existing)->second = std::move(tensor);
    return;
  }
  entries_.emplace_back(name, std::move(tensor));
}

const at::Tensor& TensorDict::at(const std::string& name) const {
  if (const Entry* e = find(name)) return e->second;
  throw Error("no tensor named '" + name + "'");
}

bool TensorDict::contains(const std::string& name) const { return find(name) != nullptr; }

bool TensorDict::erase(const std::string& name) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.first == name; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::vector<std::string> TensorDict::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

}  // namespace ood
