#include "ood/core/validation.hpp"

#include <cmath>

#include "ood/core/suggest.hpp"
#include "ood/error.hpp"

namespace ood::core {

using json = nlohmann::ordered_json;

std::string pointer_append(const std::string& pointer, std::string_view token) {
  std::string out = pointer + "/";
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string json_type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::boolean: return "true or false";
    case json::value_t::null: return "null";
    default: return "value";
  }
}

namespace {

std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool in_bounds(const ParamSpec& spec, double x) {
  if (spec.minimum()) {
    if (spec.minimum_exclusive() ? !(x > *spec.minimum()) : !(x >= *spec.minimum())) return false;
  }
  if (spec.maximum()) {
    if (spec.maximum_exclusive() ? !(x < *spec.maximum()) : !(x <= *spec.maximum())) return false;
  }
  return true;
}

// " >= 1", " in [0, 1]", "" -- the bound part of "expected integer >= 1, got 0".
std::string bounds_text(const ParamSpec& spec) {
  auto num = [](double x) {
    json j = (std::floor(x) == x && std::fabs(x) < 1e15) ? json(static_cast<std::int64_t>(x)) : json(x);
    return j.dump();
  };
  const auto& lo = spec.minimum();
  const auto& hi = spec.maximum();
  if (lo && hi)
    return " in " + std::string(spec.minimum_exclusive() ? "(" : "[") + num(*lo) + ", " + num(*hi) +
           (spec.maximum_exclusive() ? ")" : "]");
  if (lo) return std::string(spec.minimum_exclusive() ? " > " : " >= ") + num(*lo);
  if (hi) return std::string(spec.maximum_exclusive() ? " < " : " <= ") + num(*hi);
  return "";
}

}  // namespace

bool SchemaValidator::scalar(const ParamSpec& spec, ParamType type, const json& v,
                             const std::string& pointer,
                             std::vector<Diagnostic>& diagnostics) const {
  auto fail = [&](const std::string& expected) {
    diagnostics.push_back({pointer, "expected " + expected + ", got " + shown(v)});
    return false;
  };
  auto bounded = [&](const char* name) { return std::string(name) + bounds_text(spec); };
  switch (type) {
    case ParamType::Int: {
      if (!v.is_number_integer()) return fail(bounded("integer"));
      const double x = static_cast<double>(v.get<std::int64_t>());
      if (!in_bounds(spec, x)) return fail(bounded("integer"));
      return true;
    }
    case ParamType::Float: {
      if (!v.is_number()) return fail(bounded("number"));
      const double x = v.get<double>();
      if (!std::isfinite(x) || !in_bounds(spec, x)) return fail(bounded("number"));
      return true;
    }
    case ParamType::Bool:
      return v.is_boolean() ? true : fail("true or false");
    case ParamType::String:
      if (!v.is_string()) return fail("a string");
      if (v.get_ref<const std::string&>().find('\0') != std::string::npos)
        return fail("a string without NUL characters (\\u0000)");
      return true;
    case ParamType::Path:
      if (!v.is_string() || v.get<std::string>().empty()) return fail("a non-empty path string");
      // The file system would see the path cut short at the NUL.
      if (v.get_ref<const std::string&>().find('\0') != std::string::npos)
        return fail("a path without NUL characters (\\u0000)");
      return true;
    case ParamType::Enum: {
      std::string options;
      for (std::size_t i = 0; i < spec.choices().size(); ++i)
        options += (i ? ", " : "") + spec.choices()[i];
      if (!v.is_string()) return fail("one of {" + options + "}");
      const std::string s = v.get<std::string>();
      for (const auto& c : spec.choices())
        if (c == s) return true;
      diagnostics.push_back({pointer, "expected one of {" + options + "}, got " + shown(v) +
                                          did_you_mean(s, spec.choices())});
      return false;
    }
    default:
      return fail("a value");
  }
}

std::optional<json> SchemaValidator::value(const ParamSpec& spec, const json& v,
                                           const std::string& pointer,
                                           std::vector<Diagnostic>& diagnostics) const {
  switch (spec.type()) {
    case ParamType::Component:
      return component(v, spec.component_kind(), pointer, diagnostics);
    case ParamType::List: {
      if (!v.is_array()) {
        diagnostics.push_back({pointer, "expected " + spec.type_description() + ", got " + shown(v)});
        return std::nullopt;
      }
      if (v.size() < spec.min_items() || v.size() > spec.max_items()) {
        diagnostics.push_back({pointer, "expected " + spec.type_description() + ", got " +
                                            std::to_string(v.size()) + " items"});
        return std::nullopt;
      }
      json out = json::array();
      bool ok = true;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string item_ptr = pointer_append(pointer, std::to_string(i));
        if (spec.item_type() == ParamType::Component) {
          auto item = component(v[i], spec.component_kind(), item_ptr, diagnostics);
          if (item) out.push_back(*item);
          else ok = false;
        } else if (scalar(spec, spec.item_type(), v[i], item_ptr, diagnostics)) {
          out.push_back(v[i]);
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
    default:
      if (!scalar(spec, spec.type(), v, pointer, diagnostics)) return std::nullopt;
      return v;
  }
}

std::optional<json> SchemaValidator::params(const std::vector<ParamSpec>& specs,
                                            const std::string& owner,
                                            const std::function<void(const Params&)>& check,
                                            const json& params, const std::string& pointer,
                                            std::vector<Diagnostic>& diagnostics) const {
  if (!params.is_object()) {
    diagnostics.push_back({pointer, "expected an object of parameters, got " + shown(params)});
    return std::nullopt;
  }
  const std::size_t before = diagnostics.size();
  std::vector<std::string> known;
  for (const auto& spec : specs) known.push_back(spec.name());

  for (auto it = params.begin(); it != params.end(); ++it) {
    bool declared = false;
    for (const auto& k : known) declared = declared || k == it.key();
    if (!declared) {
      std::string msg = "unknown parameter '" + it.key() + "' for " + owner;
      if (auto n = nearest_name(it.key(), known))
        msg += " (did you mean '" + *n + "'?)";
      else if (known.empty())
        msg += " (it takes no parameters)";
      else {
        msg += "; it takes: ";
        for (std::size_t i = 0; i < known.size(); ++i) msg += (i ? ", " : "") + known[i];
      }
      diagnostics.push_back({pointer_append(pointer, it.key()), msg});
    }
  }

  json out = json::object();
  for (const auto& spec : specs) {
    const std::string p = pointer_append(pointer, spec.name());
    auto it = params.find(spec.name());
    if (it == params.end() || it->is_null()) {
      if (spec.has_default()) {
        // Defaults go through validation too: a default component gets its own
        // defaults filled in (and a broken default is reported, not run).
        if (auto v = value(spec, json::parse(spec.default_json_text()), p, diagnostics)) out[spec.name()] = *v;
      } else if (spec.is_required()) {
        diagnostics.push_back({pointer, "missing required parameter '" + spec.name() + "' (" +
                                            spec.type_description() + ": " + spec.doc() + ")"});
      }
      continue;
    }
    if (auto v = value(spec, *it, p, diagnostics)) out[spec.name()] = *v;
  }
  if (diagnostics.size() != before) return std::nullopt;

  if (check) {
    try {
      check(Params::from_json_text(out.dump(), pointer));
    } catch (const std::exception& e) {
      // A check names its parameter's pointer first ("/x/params/depth: ..."), when it can.
      std::string msg = e.what();
      std::string where = pointer;
      if (!msg.empty() && msg[0] == '/') {
        const auto colon = msg.find(": ");
        if (colon != std::string::npos) {
          where = msg.substr(0, colon);
          msg = msg.substr(colon + 2);
        }
      }
      diagnostics.push_back({where, msg});
      return std::nullopt;
    }
  }
  return out;
}

std::optional<json> SchemaValidator::component(const json& v, Kind kind, const std::string& pointer,
                                               std::vector<Diagnostic>& diagnostics) const {
  const std::string kind_name(to_string(kind));
  // Nested components are validated recursively; the limit bounds that recursion (and
  // the recursion of building them) whatever the document holds.
  struct DepthGuard {
    std::size_t& depth;
    explicit DepthGuard(std::size_t& d) : depth(d) { ++depth; }
    ~DepthGuard() { --depth; }
  } guard(component_depth_);
  if (component_depth_ > kMaxComponentDepth) {
    diagnostics.push_back({pointer, "components nested deeper than " + std::to_string(kMaxComponentDepth) +
                                        " levels (the limit for pipelines)"});
    return std::nullopt;
  }
  if (!v.is_object()) {
    diagnostics.push_back({pointer, "expected a " + kind_name +
                                        " component {\"plugin\": ..., \"params\": {...}}, got " + shown(v)});
    return std::nullopt;
  }
  bool ok = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "plugin" && it.key() != "params") {
      diagnostics.push_back({pointer_append(pointer, it.key()),
                             "unknown key '" + it.key() + "' in a component" +
                                 did_you_mean(it.key(), {"plugin", "params"}) +
                                 "; a component has 'plugin' and 'params'"});
      ok = false;
    }
  }
  auto plugin_it = v.find("plugin");
  if (plugin_it == v.end()) {
    diagnostics.push_back({pointer, "missing \"plugin\": the name of a " + kind_name});
    return std::nullopt;
  }
  if (!plugin_it->is_string()) {
    diagnostics.push_back({pointer_append(pointer, "plugin"),
                           "expected the name of a " + kind_name + ", got " + shown(*plugin_it)});
    return std::nullopt;
  }
  const std::string name = plugin_it->get<std::string>();
  // use(): the plugin's library is loaded now (only the plugins a pipeline names are).
  const RegisteredComponent* comp = registry_.use(kind, name);
  if (!comp) {
    if (const auto all = registry_.providers(kind, name); all.size() > 1) {
      // Two files claim the name: neither may win silently.
      ComponentConflict conflict{kind, name, {}, std::nullopt};
      for (const auto* c : all) conflict.files.push_back(c->plugin_file);
      diagnostics.push_back({pointer_append(pointer, "plugin"),
                             conflict.message() + "; remove one from the plugin path, or choose one with "
                                                  "--override " + name + "=FILE"});
      return std::nullopt;
    }
    std::string msg = "unknown " + kind_name + " '" + name + "'";
    if (auto n = nearest_name(name, registry_.names(kind))) {
      msg += " (did you mean '" + *n + "'?)";
    } else {
      const auto others = registry_.find_any(name);
      if (!others.empty())
        msg += " ('" + name + "' is a " + std::string(to_string(others.front()->info.kind)) +
               ", not a " + kind_name + ")";
      else
        msg += "; `ood plugins --kind " + kind_name + "` lists them";
    }
    diagnostics.push_back({pointer_append(pointer, "plugin"), msg});
    return std::nullopt;
  }
  const json params_in = v.contains("params") ? v["params"] : json::object();
  auto params_out = params(comp->info.params, kind_name + " '" + name + "'", comp->info.check,
                           params_in, pointer_append(pointer, "params"), diagnostics);
  if (!ok || !params_out) return std::nullopt;
  return json{{"plugin", name}, {"params", *params_out}};
}

}  // namespace ood::core
