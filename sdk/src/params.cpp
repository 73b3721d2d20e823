#include "ood/params.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "ood/error.hpp"

namespace ood {

using json = nlohmann::json;

std::string_view to_string(ParamType type) {
  switch (type) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::String: return "string";
    case ParamType::Enum: return "enum";
    case ParamType::List: return "list";
    case ParamType::Path: return "path";
    case ParamType::Component: return "component";
  }
  return "unknown";
}

// ---------------------------------------------------------------- ParamSpec

ParamSpec::ParamSpec(std::string name, ParamType type, std::string doc)
    : name_(std::move(name)), type_(type), doc_(std::move(doc)) {}

ParamSpec ParamSpec::integer(std::string name, std::string doc) {
  return ParamSpec(std::move(name), ParamType::Int, std::move(doc));
}
ParamSpec ParamSpec::real(std::string name, std::string doc) {
  return ParamSpec(std::move(name), ParamType::Float, std::move(doc));
}
ParamSpec ParamSpec::boolean(std::string name, std::string doc) {
  return ParamSpec(std::move(name), ParamType::Bool, std::move(doc));
}
ParamSpec ParamSpec::string(std::string name, std::string doc) {
  return ParamSpec(std::move(name), ParamType::String, std::move(doc));
}
ParamSpec ParamSpec::choice(std::string name, std::vector<std::string> choices, std::string doc) {
  ParamSpec spec(std::move(name), ParamType::Enum, std::move(doc));
  spec.choices_ = std::move(choices);
  return spec;
}
ParamSpec ParamSpec::path(std::string name, std::string doc) {
  return ParamSpec(std::move(name), ParamType::Path, std::move(doc));
}
ParamSpec ParamSpec::list(std::string name, ParamType item, std::string doc) {
  if (item == ParamType::List || item == ParamType::Component || item == ParamType::Enum)
    throw Error("parameter '" + name + "': lists hold int, float, bool, string or path items");
  ParamSpec spec(std::move(name), ParamType::List, std::move(doc));
  spec.item_type_ = item;
  return spec;
}
ParamSpec ParamSpec::component(std::string name, Kind kind, std::string doc) {
  ParamSpec spec(std::move(name), ParamType::Component, std::move(doc));
  spec.component_kind_ = kind;
  return spec;
}
ParamSpec ParamSpec::component_list(std::string name, Kind kind, std::string doc) {
  ParamSpec spec(std::move(name), ParamType::List, std::move(doc));
  spec.item_type_ = ParamType::Component;
  spec.component_kind_ = kind;
  return spec;
}

ParamSpec& ParamSpec::default_value(std::int64_t value) { return default_json(json(value).dump()); }
ParamSpec& ParamSpec::default_value(double value) { return default_json(json(value).dump()); }
ParamSpec& ParamSpec::default_value(bool value) { return default_json(json(value).dump()); }
ParamSpec& ParamSpec::default_value(const char* value) { return default_json(json(value).dump()); }
ParamSpec& ParamSpec::default_value(const std::string& value) {
  return default_json(json(value).dump());
}
ParamSpec& ParamSpec::default_value(const std::vector<std::int64_t>& value) {
  return default_json(json(value).dump());
}
ParamSpec& ParamSpec::default_value(const std::vector<double>& value) {
  return default_json(json(value).dump());
}
ParamSpec& ParamSpec::default_value(const std::vector<std::string>& value) {
  return default_json(json(value).dump());
}
ParamSpec& ParamSpec::default_json(std::string json_text) {
  if (!json::accept(json_text))
    throw Error("parameter '" + name_ + "': default is not valid JSON: " + json_text);
  default_json_ = std::move(json_text);
  optional_ = false;
  return *this;
}
ParamSpec& ParamSpec::optional() {
  optional_ = true;
  default_json_.clear();
  return *this;
}
ParamSpec& ParamSpec::min(double bound, bool exclusive) {
  min_ = bound;
  min_exclusive_ = exclusive;
  return *this;
}
ParamSpec& ParamSpec::max(double bound, bool exclusive) {
  max_ = bound;
  max_exclusive_ = exclusive;
  return *this;
}
ParamSpec& ParamSpec::items(std::size_t min_items, std::size_t max_items) {
  min_items_ = min_items;
  max_items_ = max_items;
  return *this;
}

namespace {
std::string format_number(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}
}  // namespace

std::string ParamSpec::type_description() const {
  std::ostringstream out;
  auto bounds = [&] {
    if (min_ && max_) {
      out << " in " << (min_exclusive_ ? "(" : "[") << format_number(*min_) << ", "
          << format_number(*max_) << (max_exclusive_ ? ")" : "]");
    } else if (min_) {
      out << (min_exclusive_ ? " > " : " >= ") << format_number(*min_);
    } else if (max_) {
      out << (max_exclusive_ ? " < " : " <= ") << format_number(*max_);
    }
  };
  switch (type_) {
    case ParamType::Enum: {
      out << "enum {";
      for (std::size_t i = 0; i < choices_.size(); ++i) out << (i ? ", " : "") << choices_[i];
      out << "}";
      break;
    }
    case ParamType::List: {
      if (item_type_ == ParamType::Component)
        out << "list of " << to_string(component_kind_) << " components";
      else
        out << "list of " << to_string(item_type_);
      bounds();
      if (min_items_ == max_items_)
        out << " (" << min_items_ << " items)";
      else if (min_items_ > 0 && max_items_ != SIZE_MAX)
        out << " (" << min_items_ << " to " << max_items_ << " items)";
      else if (min_items_ > 0)
        out << " (at least " << min_items_ << " items)";
      else if (max_items_ != SIZE_MAX)
        out << " (at most " << max_items_ << " items)";
      break;
    }
    case ParamType::Component:
      out << to_string(component_kind_) << " component";
      break;
    default:
      out << to_string(type_);
      bounds();
  }
  return out.str();
}

// ---------------------------------------------------------------- Params

struct Params::Impl {
  json values = json::object();
  std::string pointer;
  // Set by with_schema(): the declared names, and who declared them.
  bool schema_known = false;
  std::vector<std::string> declared;
  std::string owner;
};

Params::Params() : impl_(std::make_shared<Impl>()) {}

Params Params::from_json_text(const std::string& json_object_text, std::string pointer) {
  auto impl = std::make_shared<Impl>();
  try {
    impl->values = json::parse(json_object_text);
  } catch (const json::exception& e) {
    throw InvalidArgument(pointer + ": parameters are not valid JSON: " + e.what());
  }
  if (!impl->values.is_object())
    throw InvalidArgument(pointer + ": parameters must be a JSON object");
  impl->pointer = std::move(pointer);
  Params p;
  p.impl_ = std::move(impl);
  return p;
}

namespace {

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

[[noreturn]] void wrong_type(const std::string& pointer, const char* expected, const json& value) {
  throw InvalidArgument(pointer + ": expected " + expected + ", got " + value.dump());
}

// After validation against a known schema, a getter that fails is the plugin's bug.
[[noreturn]] void plugin_bug(const std::string& pointer, const std::string& owner, const std::string& what) {
  throw Error(pointer + ": " + what + " (a bug in " + owner + ", not in the pipeline)");
}

}  // namespace

std::string Params::pointer(std::string_view name) const {
  return impl_->pointer + "/" + escape_pointer_token(name);
}

const std::string& Params::base_pointer() const { return impl_->pointer; }

bool Params::has(std::string_view name) const {
  auto it = impl_->values.find(std::string(name));
  return it != impl_->values.end() && !it->is_null();
}

Params Params::with_schema(const std::vector<ParamSpec>& declared, std::string owner) const {
  auto impl = std::make_shared<Impl>(*impl_);
  impl->schema_known = true;
  impl->declared.clear();
  for (const auto& p : declared) impl->declared.push_back(p.name());
  impl->owner = std::move(owner);
  Params out;
  out.impl_ = std::move(impl);
  return out;
}

namespace {
template <typename Impl>
const json& lookup_in(const Impl& impl, const std::string& pointer, std::string_view name) {
  auto it = impl.values.find(std::string(name));
  if (it == impl.values.end() || it->is_null()) {
    if (impl.schema_known) {
      const bool declared =
          std::find(impl.declared.begin(), impl.declared.end(), std::string(name)) != impl.declared.end();
      plugin_bug(pointer, impl.owner,
                 declared ? "the plugin reads optional parameter '" + std::string(name) +
                                "', which was not given, without checking has() first"
                          : "the plugin reads parameter '" + std::string(name) +
                                "', which its schema does not declare");
    }
    throw InvalidArgument(pointer + ": parameter '" + std::string(name) +
                          "' was not given and has no default");
  }
  return *it;
}
}  // namespace

template <typename Impl>
[[noreturn]] void wrong_type_in(const Impl& impl, const std::string& pointer, const char* expected, const json& value) {
  if (impl.schema_known)
    plugin_bug(pointer, impl.owner,
               std::string("the plugin reads it as ") + expected + " but it holds " + value.dump() +
                   " (the getter does not match the declared type)");
  wrong_type(pointer, expected, value);
}

std::int64_t Params::get_int(std::string_view name) const {
  const json& v = lookup_in(*impl_, pointer(name), name);
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())
    return static_cast<std::int64_t>(v.get<double>());
  wrong_type_in(*impl_, pointer(name), "an integer", v);
}

double Params::get_float(std::string_view name) const {
  const json& v = lookup_in(*impl_, pointer(name), name);
  if (v.is_number()) return v.get<double>();
  wrong_type_in(*impl_, pointer(name), "a number", v);
}

bool Params::get_bool(std::string_view name) const {
  const json& v = lookup_in(*impl_, pointer(name), name);
  if (v.is_boolean()) return v.get<bool>();
  wrong_type_in(*impl_, pointer(name), "true or false", v);
}

std::string Params::get_string(std::string_view name) const {
  const json& v = lookup_in(*impl_, pointer(name), name);
  if (v.is_string()) return v.get<std::string>();
  wrong_type_in(*impl_, pointer(name), "a string", v);
}

std::filesystem::path Params::get_path(std::string_view name) const {
  const std::string text = get_string(name);
  // The file system would see the path cut short at the NUL.
  if (text.find('\0') != std::string::npos)
    throw InvalidArgument(pointer(name) + ": a path cannot contain a NUL character (\\u0000)");
  return std::filesystem::path(text);
}

namespace {
template <typename T, typename Check>
std::vector<T> get_list(const json& v, const std::string& ptr, const char* expected, Check check) {
  if (!v.is_array()) wrong_type(ptr, expected, v);
  std::vector<T> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!check(v[i])) wrong_type(ptr + "/" + std::to_string(i), expected, v[i]);
    out.push_back(v[i].get<T>());
  }
  return out;
}
}  // namespace

std::vector<std::int64_t> Params::get_int_list(std::string_view name) const {
  return get_list<std::int64_t>(lookup_in(*impl_, pointer(name), name), pointer(name),
                                "a list of integers",
                                [](const json& x) { return x.is_number_integer(); });
}

std::vector<double> Params::get_float_list(std::string_view name) const {
  return get_list<double>(lookup_in(*impl_, pointer(name), name), pointer(name),
                          "a list of numbers", [](const json& x) { return x.is_number(); });
}

std::vector<std::string> Params::get_string_list(std::string_view name) const {
  return get_list<std::string>(lookup_in(*impl_, pointer(name), name), pointer(name),
                               "a list of strings", [](const json& x) { return x.is_string(); });
}

namespace {
ComponentSpec component_from(const json& v, const std::string& ptr) {
  if (!v.is_object() || !v.contains("plugin") || !v["plugin"].is_string())
    throw InvalidArgument(ptr + ": expected a component {\"plugin\": ..., \"params\": {...}}");
  ComponentSpec spec;
  spec.plugin = v["plugin"].get<std::string>();
  spec.pointer = ptr;
  json params = v.contains("params") ? v["params"] : json::object();
  spec.params = Params::from_json_text(params.dump(), ptr + "/params");
  return spec;
}
}  // namespace

ComponentSpec Params::get_component(std::string_view name) const {
  return component_from(lookup_in(*impl_, pointer(name), name), pointer(name));
}

std::vector<ComponentSpec> Params::get_component_list(std::string_view name) const {
  const json& v = lookup_in(*impl_, pointer(name), name);
  if (!v.is_array()) wrong_type(pointer(name), "a list of components", v);
  std::vector<ComponentSpec> out;
  for (std::size_t i = 0; i < v.size(); ++i)
    out.push_back(component_from(v[i], pointer(name) + "/" + std::to_string(i)));
  return out;
}

std::string Params::to_json_text() const { return impl_->values.dump(); }

}  // namespace ood
