#include "ood/kind.hpp"

#include <string>

namespace ood {

std::string_view to_string(Kind kind) {
  switch (kind) {
    case Kind::Model: return "model";
    case Kind::Detector: return "detector";
    case Kind::Loss: return "loss";
    case Kind::Dataset: return "dataset";
    case Kind::Augmentation: return "augmentation";
  }
  return "unknown";
}

std::optional<Kind> kind_from_string(std::string_view text) {
  for (Kind k : kAllKinds) {
    std::string_view name = to_string(k);
    if (text == name) return k;
    if (text.size() == name.size() + 1 && text.substr(0, name.size()) == name &&
        text.back() == 's')
      return k;
  }
  return std::nullopt;
}

}  // namespace ood
