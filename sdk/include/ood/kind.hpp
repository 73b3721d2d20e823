#pragma once
// The five kinds of components a plugin can provide.
#include <optional>
#include <string_view>

#include "ood/export.hpp"

namespace ood {

enum class Kind { Model, Detector, Loss, Dataset, Augmentation };

inline constexpr Kind kAllKinds[] = {Kind::Model, Kind::Detector, Kind::Loss, Kind::Dataset,
                                     Kind::Augmentation};

/// "model", "detector", "loss", "dataset", "augmentation".
OOD_SDK_API std::string_view to_string(Kind kind);
/// Accepts the singular and the plural ("detectors"), as users type both.
OOD_SDK_API std::optional<Kind> kind_from_string(std::string_view text);

}  // namespace ood
