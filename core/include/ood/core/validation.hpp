#pragma once
// Checking JSON against components' parameter schemas, reporting every problem with
// its JSON pointer.
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ood/core/registry.hpp"

namespace ood::core {

/// One problem in a pipeline description.
struct Diagnostic {
  std::string pointer;  // RFC 6901 JSON pointer ("" = the document)
  std::string message;
  std::string to_string() const { return (pointer.empty() ? std::string("/") : pointer) + ": " + message; }
};

/// Appends "/token" with RFC 6901 escaping.
std::string pointer_append(const std::string& pointer, std::string_view token);

/// "object", "array", "string", "integer", "number", "true or false", "null".
std::string json_type_name(const nlohmann::ordered_json& value);

/// How deeply components may nest inside each other's parameters (a class-filter of a
/// class-filter of ...). Deeper nesting is reported at the pointer of the component
/// that exceeds it.
inline constexpr std::size_t kMaxComponentDepth = 32;

class SchemaValidator {
 public:
  explicit SchemaValidator(const Registry& registry) : registry_(registry) {}

  /// Validates `value` as a component of `kind`: {"plugin": name, "params": {...}}.
  /// Returns the normalised component (params completed with defaults, nested
  /// components normalised) when it is valid; otherwise appends diagnostics and
  /// returns nothing.
  std::optional<nlohmann::ordered_json> component(const nlohmann::ordered_json& value, Kind kind,
                                          const std::string& pointer,
                                          std::vector<Diagnostic>& diagnostics) const;

  /// Validates an object against parameter specs: unknown keys (with a suggestion),
  /// missing required values, types and ranges; fills in defaults. `owner` names the
  /// object in messages ("detector 'max-softmax'", "section 'evaluate'"); `check`
  /// (may be empty) runs the component's cross-parameter checks once all else passed.
  std::optional<nlohmann::ordered_json> params(const std::vector<ParamSpec>& specs,
                                       const std::string& owner,
                                       const std::function<void(const Params&)>& check,
                                       const nlohmann::ordered_json& params, const std::string& pointer,
                                       std::vector<Diagnostic>& diagnostics) const;

 private:
  std::optional<nlohmann::ordered_json> value(const ParamSpec& spec, const nlohmann::ordered_json& v,
                                      const std::string& pointer,
                                      std::vector<Diagnostic>& diagnostics) const;
  bool scalar(const ParamSpec& spec, ParamType type, const nlohmann::ordered_json& v,
              const std::string& pointer, std::vector<Diagnostic>& diagnostics) const;
  const Registry& registry_;
  mutable std::size_t component_depth_ = 0;  // components being validated, nested
};

}  // namespace ood::core
