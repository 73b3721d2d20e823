#include "ood/core/transform_presets.hpp"

#include <algorithm>

#include "ood/core/suggest.hpp"
#include "ood/download/weights.hpp"
#include "ood/error.hpp"

namespace ood::core {

using json = nlohmann::ordered_json;

namespace {

json component(const char* plugin, json params) {
  json c = {{"plugin", plugin}};
  if (!params.empty()) c["params"] = std::move(params);
  return c;
}

bool is_preset(const json& value) { return value.is_object() && value.contains("preset"); }

bool has_preset(const json& transforms) {
  if (is_preset(transforms)) return true;
  if (!transforms.is_array()) return false;
  for (const auto& item : transforms)
    if (is_preset(item)) return true;
  return false;
}

// One {"preset": ...} object: its components, or a diagnostic and nothing.
json expand_one(const json& item, const std::string& pointer, std::vector<Diagnostic>& diags) {
  for (auto it = item.begin(); it != item.end(); ++it)
    if (it.key() != "preset") {
      diags.push_back({pointer_append(pointer, it.key()),
                       "a preset takes no other key than 'preset' (list further transforms beside it)"});
      return json::array();
    }
  const json& name = item["preset"];
  if (!name.is_string()) {
    diags.push_back({pointer_append(pointer, "preset"),
                     "expected the name of a weight set (`ood weights list`), got a " + json_type_name(name)});
    return json::array();
  }
  try {
    return preset_transforms(name.get<std::string>());
  } catch (const Error& e) {
    diags.push_back({pointer_append(pointer, "preset"), e.what()});
  }
  return json::array();
}

json expand_list(const json& transforms, const std::string& pointer, std::vector<Diagnostic>& diags) {
  if (is_preset(transforms)) return expand_one(transforms, pointer, diags);
  json out = json::array();
  for (std::size_t i = 0; i < transforms.size(); ++i) {
    const json& item = transforms[i];
    if (!is_preset(item)) {
      out.push_back(item);
      continue;
    }
    for (const auto& c : expand_one(item, pointer_append(pointer, std::to_string(i)), diags)) out.push_back(c);
  }
  return out;
}

}  // namespace

json preset_transforms(const std::string& name) {
  // One read of the registry (the user's file included) serves the lookup and the
  // suggestion.
  const auto registry = download::weights_registry();
  const auto entry = std::find_if(registry.begin(), registry.end(),
                                  [&](const download::WeightsEntry& e) { return e.name == name; });
  if (entry == registry.end()) {
    std::vector<std::string> names;
    for (const auto& e : registry) names.push_back(e.name);
    throw InvalidArgument("unknown preset '" + name + "': presets are the weight sets of the registry" +
                          did_you_mean(name, names) + " (`ood weights list`)");
  }
  if (!entry->preprocessing)
    throw InvalidArgument("weight set '" + name + "' has no known preprocessing (" + entry->origin +
                          "): give the transforms by hand");
  const download::Preprocessing& pre = *entry->preprocessing;
  if (pre.interpolation != "bilinear")
    throw InvalidArgument("weight set '" + name + "': interpolation '" + pre.interpolation +
                          "' is not available (resize is bilinear)");
  // torchvision's order: resize, centre crop, (to tensor), normalise. Grey to RGB after
  // the geometry: the same result as before it, on a third of the pixels.
  json out = json::array();
  if (pre.resize.size() == 1) out.push_back(component("resize", {{"shorter_side", pre.resize[0]}}));
  if (pre.resize.size() == 2) out.push_back(component("resize", {{"size", pre.resize}}));
  if (pre.center_crop > 0) out.push_back(component("center-crop", {{"size", json::array({pre.center_crop})}}));
  if (pre.to_rgb) out.push_back(component("to-rgb", json::object()));
  if (!pre.mean.empty()) out.push_back(component("normalize", {{"mean", pre.mean}, {"std", pre.std}}));
  return out;
}

const json& expand_transform_presets(const json& document, json& storage, std::vector<Diagnostic>& diags) {
  struct Place {
    const char* section;
    const char* key;
  };
  static const Place places[] = {{"data", "transforms"}, {"train", "transforms"}, {"train", "outlier_transforms"}};
  bool any = false;
  for (const auto& p : places)
    if (document.contains(p.section) && document[p.section].is_object() && document[p.section].contains(p.key) &&
        has_preset(document[p.section][p.key]))
      any = true;
  if (!any) return document;
  storage = document;
  for (const auto& p : places) {
    if (!storage.contains(p.section) || !storage[p.section].is_object() || !storage[p.section].contains(p.key))
      continue;
    json& transforms = storage[p.section][p.key];
    if (has_preset(transforms))
      transforms = expand_list(transforms, std::string("/") + p.section + "/" + p.key, diags);
  }
  return storage;
}

}  // namespace ood::core
