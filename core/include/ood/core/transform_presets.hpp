#pragma once
// Transform presets: `"transforms": {"preset": NAME}` stands for the evaluation
// preprocessing that belongs to the weight set NAME of the weights registry (resize,
// centre crop, grey to RGB, normalisation), so that users need not copy torchvision's or
// pytorch-ood's numbers by hand. A list may also hold {"preset": NAME} items among
// ordinary transforms; each is replaced in place.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ood/core/validation.hpp"

namespace ood::core {

/// The transform components for the weight set `name`, as a JSON list of components.
/// Throws ood::InvalidArgument when the name is unknown (with a suggestion) or the
/// entry has no known preprocessing.
nlohmann::ordered_json preset_transforms(const std::string& name);

/// `document` with every preset in /data/transforms, /train/transforms and
/// /train/outlier_transforms replaced by its components. Returns `document` itself
/// (no copy) when there is no preset; otherwise fills `storage` and returns it. Bad
/// presets are reported in `diags` with their JSON pointer and left out.
const nlohmann::ordered_json& expand_transform_presets(const nlohmann::ordered_json& document,
                                                        nlohmann::ordered_json& storage,
                                                        std::vector<Diagnostic>& diags);

}  // namespace ood::core
