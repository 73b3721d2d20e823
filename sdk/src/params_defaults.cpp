// Params::from_json_text with a schema: defaults filled in without the host's
// validator, for code that builds Params itself (out-of-tree plugin tests, tools).
// Kept apart from params.cpp so that it only uses the public Params API.
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "ood/error.hpp"
#include "ood/params.hpp"

namespace ood {

Params Params::from_json_text(const std::string& json_object_text, std::string pointer,
                              const std::vector<ParamSpec>& specs) {
  using json = nlohmann::json;
  json values;
  try {
    values = json::parse(json_object_text);
  } catch (const json::exception& e) {
    throw InvalidArgument(pointer + ": parameters are not valid JSON: " + e.what());
  }
  if (!values.is_object()) throw InvalidArgument(pointer + ": parameters must be a JSON object");

  std::set<std::string> declared;
  std::string accepted;
  for (const auto& spec : specs) {
    declared.insert(spec.name());
    accepted += (accepted.empty() ? "" : ", ") + spec.name();
  }
  for (const auto& [name, value] : values.items())
    if (!declared.count(name))
      throw InvalidArgument(pointer + "/" + name + ": unknown parameter '" + name + "'; it takes: " +
                            (accepted.empty() ? "no parameters" : accepted));

  for (const auto& spec : specs) {
    const auto it = values.find(spec.name());
    if (it != values.end() && !it->is_null()) continue;
    if (spec.has_default()) {
      // Defaults are JSON text written by the plugin itself: a parse error is its bug.
      try {
        values[spec.name()] = json::parse(spec.default_json_text());
      } catch (const json::exception& e) {
        throw Error(pointer + "/" + spec.name() + ": the declared default is not valid JSON (" +
                    spec.default_json_text() + "): " + e.what());
      }
    } else if (spec.is_required()) {
      throw InvalidArgument(pointer + "/" + spec.name() + ": missing required parameter '" + spec.name() + "' (" +
                            spec.type_description() + ")");
    } else if (it != values.end()) {
      values.erase(it);  // optional and null: absent, as `has` reports it
    }
  }
  return from_json_text(values.dump(), std::move(pointer));
}

}  // namespace ood
