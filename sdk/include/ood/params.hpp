#pragma once
// Typed parameter schema (what a component accepts) and validated parameter values
// (what a pipeline gave it).
//
// Like GStreamer's param specs, every parameter has a name, a type, a default or
// "required", an optional range, and a doc string; `ood describe` prints them and the
// pipeline validator checks every value against them before anything runs. Values
// reach a component's factory as `Params`, already validated and with defaults filled
// in, so factories read them with typed getters and never see malformed JSON.
//
// The header deliberately exposes no JSON library: the SDK's ABI consists of standard
// types only, and defaults are stored as JSON text.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ood/export.hpp"
#include "ood/kind.hpp"

namespace ood {

enum class ParamType { Int, Float, Bool, String, Enum, List, Path, Component };

/// "int", "float", "bool", "string", "enum", "list", "path", "component".
OOD_SDK_API std::string_view to_string(ParamType type);

/// Declaration of one parameter. Built with the named constructors and chained
/// setters, e.g. `ParamSpec::real("t", "temperature").default_value(1.0).min(0.0, true)`.
class OOD_SDK_API ParamSpec {
 public:
  static ParamSpec integer(std::string name, std::string doc);
  static ParamSpec real(std::string name, std::string doc);
  static ParamSpec boolean(std::string name, std::string doc);
  static ParamSpec string(std::string name, std::string doc);
  /// One of a fixed set of strings.
  static ParamSpec choice(std::string name, std::vector<std::string> choices, std::string doc);
  /// A file or directory path. Relative paths are resolved against the working directory.
  static ParamSpec path(std::string name, std::string doc);
  /// A homogeneous list of `item` values (Int, Float, Bool, String or Path).
  static ParamSpec list(std::string name, ParamType item, std::string doc);
  /// A nested component `{"plugin": ..., "params": {...}}` of the given kind.
  static ParamSpec component(std::string name, Kind kind, std::string doc);
  /// A list of nested components of the given kind.
  static ParamSpec component_list(std::string name, Kind kind, std::string doc);

  ParamSpec& default_value(std::int64_t value);
  ParamSpec& default_value(int value) { return default_value(static_cast<std::int64_t>(value)); }
  ParamSpec& default_value(double value);
  ParamSpec& default_value(bool value);
  ParamSpec& default_value(const char* value);
  ParamSpec& default_value(const std::string& value);
  ParamSpec& default_value(const std::vector<std::int64_t>& value);
  ParamSpec& default_value(const std::vector<double>& value);
  ParamSpec& default_value(const std::vector<std::string>& value);
  /// The default as JSON text, for values the typed setters cannot express.
  ParamSpec& default_json(std::string json_text);
  /// The parameter may be absent and has no default (`Params::has` tells).
  ParamSpec& optional();
  /// Inclusive (or exclusive) bounds, for Int, Float and the items of numeric lists.
  ParamSpec& min(double bound, bool exclusive = false);
  ParamSpec& max(double bound, bool exclusive = false);
  /// Bounds on the number of items of a List or component list.
  ParamSpec& items(std::size_t min_items, std::size_t max_items = SIZE_MAX);

  const std::string& name() const { return name_; }
  ParamType type() const { return type_; }
  /// Item type of a List (Component for component lists).
  ParamType item_type() const { return item_type_; }
  const std::string& doc() const { return doc_; }
  /// Kind of a Component or component list parameter.
  Kind component_kind() const { return component_kind_; }
  const std::vector<std::string>& choices() const { return choices_; }
  /// JSON text of the default; empty when the parameter has none.
  const std::string& default_json_text() const { return default_json_; }
  bool has_default() const { return !default_json_.empty(); }
  bool is_optional() const { return optional_; }
  bool is_required() const { return !has_default() && !optional_; }
  const std::optional<double>& minimum() const { return min_; }
  bool minimum_exclusive() const { return min_exclusive_; }
  const std::optional<double>& maximum() const { return max_; }
  bool maximum_exclusive() const { return max_exclusive_; }
  std::size_t min_items() const { return min_items_; }
  std::size_t max_items() const { return max_items_; }
  /// Human-readable type, e.g. "float > 0", "list of int (3 items)", "enum {train, test}".
  std::string type_description() const;

 private:
  ParamSpec(std::string name, ParamType type, std::string doc);
  std::string name_;
  ParamType type_;
  ParamType item_type_ = ParamType::String;
  Kind component_kind_ = Kind::Dataset;
  std::string doc_;
  std::vector<std::string> choices_;
  std::string default_json_;
  bool optional_ = false;
  std::optional<double> min_;
  bool min_exclusive_ = false;
  std::optional<double> max_;
  bool max_exclusive_ = false;
  std::size_t min_items_ = 0;
  std::size_t max_items_ = SIZE_MAX;
};

struct ComponentSpec;

/// Validated parameter values of one component, defaults filled in.
///
/// Getters throw ood::InvalidArgument naming the parameter's JSON pointer when the
/// parameter is absent or has another type (which validation makes impossible for
/// declared parameters, so in practice this catches a plugin asking for a name it
/// did not declare).
class OOD_SDK_API Params {
 public:
  Params();
  /// Built by the host from validated JSON; `pointer` is where these params sit in
  /// the pipeline (e.g. "/detectors/msp/params"), used in error messages.
  static Params from_json_text(const std::string& json_object_text, std::string pointer);
  /// The same for values that did not go through the host's validation (out-of-tree
  /// tests, tools): fills in the defaults of `specs` for absent or null parameters and
  /// throws ood::InvalidArgument, naming the pointer, for a parameter not in `specs` or
  /// a required one that is missing. Types and bounds are not checked here (the host's
  /// validator and ood::testkit::Plugins::make_* do that); nested components keep their
  /// params as given.
  static Params from_json_text(const std::string& json_object_text, std::string pointer,
                               const std::vector<ParamSpec>& specs);

  bool has(std::string_view name) const;
  std::int64_t get_int(std::string_view name) const;
  double get_float(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  /// String and Enum parameters.
  std::string get_string(std::string_view name) const;
  std::filesystem::path get_path(std::string_view name) const;
  std::vector<std::int64_t> get_int_list(std::string_view name) const;
  std::vector<double> get_float_list(std::string_view name) const;
  std::vector<std::string> get_string_list(std::string_view name) const;
  ComponentSpec get_component(std::string_view name) const;
  std::vector<ComponentSpec> get_component_list(std::string_view name) const;

  /// JSON pointer of a parameter ("/detectors/msp/params/t"), for messages.
  std::string pointer(std::string_view name) const;
  /// Where these params sit in the pipeline.
  const std::string& base_pointer() const;
  /// The values as a JSON object text (for metadata and logs).
  std::string to_json_text() const;

  /// A copy that knows the component's declared schema and who declared it (e.g.
  /// "detector 'x' of plugin /path/ood-x.so"). The host hands factories such a copy:
  /// validation has then guaranteed every declared value, so a getter that still fails
  /// (a name that was never declared, an optional one read without has(), a getter of
  /// another type) is the plugin's bug and throws ood::Error (exit code 1) saying so,
  /// instead of InvalidArgument (exit code 2, the user's mistake).
  Params with_schema(const std::vector<ParamSpec>& declared, std::string owner) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

/// A nested component as written in a pipeline: which plugin, with which
/// (validated) parameters, and where it was written.
struct ComponentSpec {
  std::string plugin;
  Params params;
  std::string pointer;
};

}  // namespace ood
