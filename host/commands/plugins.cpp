// `ood plugins` and `ood describe`: what the loaded plugins provide.
#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "../cli.hpp"
#include "ood/core/suggest.hpp"

namespace ood::cli {

using json = nlohmann::ordered_json;

namespace {

// Bounds print as integers when they are whole numbers ("minimum": 1, not 1.0).
json number(double x) {
  if (std::floor(x) == x && std::fabs(x) < 1e15) return static_cast<std::int64_t>(x);
  return x;
}

json param_json(const ParamSpec& p) {
  json j = {{"name", p.name()}, {"type", std::string(to_string(p.type()))}};
  if (p.type() == ParamType::List) j["items"] = std::string(to_string(p.item_type()));
  const bool holds_components =
      p.type() == ParamType::Component ||
      (p.type() == ParamType::List && p.item_type() == ParamType::Component);
  if (holds_components) j["kind"] = std::string(to_string(p.component_kind()));
  if (!p.choices().empty()) j["choices"] = p.choices();
  if (p.has_default()) j["default"] = json::parse(p.default_json_text());
  j["required"] = p.is_required();
  if (p.minimum()) j[p.minimum_exclusive() ? "exclusive_minimum" : "minimum"] = number(*p.minimum());
  if (p.maximum()) j[p.maximum_exclusive() ? "exclusive_maximum" : "maximum"] = number(*p.maximum());
  if (p.min_items() > 0) j["min_items"] = p.min_items();
  if (p.max_items() != SIZE_MAX) j["max_items"] = p.max_items();
  j["doc"] = p.doc();
  return j;
}

json component_json(const core::RegisteredComponent& c) {
  json params = json::array();
  for (const auto& p : c.info.params) params.push_back(param_json(p));
  return {{"kind", std::string(to_string(c.info.kind))},
          {"name", c.info.name},
          {"plugin", c.plugin},
          {"plugin_version", c.record ? c.record->version : std::string()},
          {"summary", c.info.summary},
          {"paper", c.info.paper},
          {"year", c.info.year},
          {"params", params}};
}

std::string default_text(const ParamSpec& p) {
  if (p.has_default()) return p.default_json_text();
  return p.is_optional() ? "(optional)" : "(required)";
}

}  // namespace

int cmd_plugins(const std::vector<std::string>& args, GlobalOptions& global) {
  po::options_description own("ood plugins [--kind KIND] [--json]");
  std::string kind_text;
  bool as_json = false, help = false;
  own.add_options()("kind", po::value<std::string>(&kind_text), "only this kind: model, detector, loss, dataset, augmentation")
      ("json", po::bool_switch(&as_json), "every component's schema as JSON")
      ("help,h", po::bool_switch(&help), "this help");
  parse_command("plugins", args, own, global);
  if (help) {
    std::cout << own << "\n" << global_options_description(global) << "\n";
    return kExitOk;
  }
  std::optional<Kind> kind;
  if (!kind_text.empty()) {
    kind = kind_from_string(kind_text);
    if (!kind) throw UsageError("--kind: unknown kind '" + kind_text + "' (model, detector, loss, dataset, augmentation)");
  }
  Session session;
  open_session(global, session);
  const auto components = session.registry.list(kind);
  if (as_json) {
    json out = json::array();
    for (const auto* c : components) out.push_back(component_json(*c));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::size_t width = 4, vwidth = 7;
  for (const auto* c : components) {
    width = std::max(width, c->info.name.size());
    if (c->record) vwidth = std::max(vwidth, c->record->version.size());
  }
  std::cout << std::left << std::setw(14) << "KIND" << std::setw(static_cast<int>(width) + 2) << "NAME"
            << std::setw(static_cast<int>(vwidth) + 2) << "VERSION" << "SUMMARY\n";
  std::size_t conflicting = 0;
  for (const auto* c : components) {
    // A name several files provide is listed once per file, marked, with the file.
    const bool conflict = session.registry.providers(c->info.kind, c->info.name).size() > 1;
    const bool chosen = conflict && session.registry.find(c->info.kind, c->info.name) == c;
    conflicting += conflict;
    std::cout << std::left << std::setw(14) << to_string(c->info.kind)
              << std::setw(static_cast<int>(width) + 2) << c->info.name
              << std::setw(static_cast<int>(vwidth) + 2) << (c->record ? c->record->version : std::string("-"))
              << c->info.summary;
    if (conflict)
      std::cout << (chosen ? "  [chosen by --override: " : "  [CONFLICT: ") << c->plugin_file.string() << "]";
    std::cout << "\n";
  }
  std::cout << components.size() << " components from " << session.report.loaded.size() << " plugins";
  if (!session.report.refused.empty())
    std::cout << " (" << session.report.refused.size() << " refused, see the warnings above)";
  if (conflicting > 0) std::cout << "; " << conflicting << " entries conflict (see the warnings above)";
  std::cout << "\n";
  return kExitOk;
}

int cmd_describe(const std::vector<std::string>& args, GlobalOptions& global) {
  po::options_description own("ood describe [KIND/]NAME [--json]");
  std::string name;
  bool as_json = false, help = false;
  own.add_options()("name", po::value<std::string>(&name), "component name")
      ("json", po::bool_switch(&as_json), "the schema as JSON")
      ("help,h", po::bool_switch(&help), "this help");
  po::positional_options_description pos;
  pos.add("name", 1);
  parse_command("describe", args, own, global, &pos);
  if (help) {
    std::cout << own << "\n" << global_options_description(global) << "\n";
    return kExitOk;
  }
  if (name.empty()) throw UsageError("ood describe: which component? e.g. `ood describe energy-based`");
  Session session;
  open_session(global, session);

  std::vector<const core::RegisteredComponent*> matches;
  if (const auto slash = name.find('/'); slash != std::string::npos) {
    const auto kind = kind_from_string(name.substr(0, slash));
    if (!kind) throw UsageError("ood describe: unknown kind '" + name.substr(0, slash) + "'");
    if (const auto* c = session.registry.find(*kind, name.substr(slash + 1))) matches.push_back(c);
    name = name.substr(slash + 1);
  } else {
    matches = session.registry.find_any(name);
  }
  if (matches.empty())
    throw UsageError("ood describe: no component named '" + name + "'" +
                     core::did_you_mean(name, session.registry.all_names()) +
                     "; `ood plugins` lists them");
  if (matches.size() > 1 && !as_json) {
    std::ostringstream which;
    for (const auto* c : matches) which << " " << to_string(c->info.kind) << "/" << c->info.name;
    throw UsageError("ood describe: '" + name + "' is ambiguous; use one of:" + which.str());
  }
  if (as_json) {
    json out = json::array();
    for (const auto* c : matches) out.push_back(component_json(*c));
    std::cout << (out.size() == 1 ? out[0] : out).dump(2) << "\n";
    return kExitOk;
  }
  const auto& c = *matches.front();
  std::cout << c.info.name << " (" << to_string(c.info.kind) << ")\n";
  std::cout << "  " << c.info.summary << "\n";
  std::cout << "  plugin: " << c.plugin << " (" << c.plugin_file.string() << ")\n";
  if (c.record)
    std::cout << "  version " << c.record->version << ", licence " << c.record->license << ", LibTorch "
              << c.record->torch_build << "\n";
  if (!c.info.paper.empty())
    std::cout << "  paper:  " << c.info.paper << (c.info.year ? " (" + std::to_string(c.info.year) + ")" : "")
              << "\n";
  if (!c.info.doc.empty()) {
    std::cout << "\n";
    std::istringstream doc(c.info.doc);
    for (std::string line; std::getline(doc, line);) std::cout << "  " << line << "\n";
  }
  std::cout << "\nParameters:";
  if (c.info.params.empty()) std::cout << " none";
  std::cout << "\n";
  // An enum longer than this (many choices) goes on its own line below its parameter,
  // so that it does not widen the type column of every other row.
  constexpr std::size_t kMaxTypeColumn = 32;
  std::size_t w_name = 4, w_type = 4, w_def = 7;
  for (const auto& p : c.info.params) {
    w_name = std::max(w_name, p.name().size());
    const std::string type = p.type_description();
    if (type.size() <= kMaxTypeColumn || type.rfind("enum {", 0) != 0) w_type = std::max(w_type, type.size());
    w_def = std::max(w_def, default_text(p).size());
  }
  for (const auto& p : c.info.params) {
    const std::string type = p.type_description();
    const bool long_type = type.size() > kMaxTypeColumn && type.rfind("enum {", 0) == 0;
    std::cout << "  " << std::left << std::setw(static_cast<int>(w_name) + 2) << p.name()
              << std::setw(static_cast<int>(w_type) + 2) << (long_type ? "enum" : type)
              << std::setw(static_cast<int>(w_def) + 2) << default_text(p) << p.doc() << "\n";
    if (long_type) std::cout << "  " << std::string(w_name + 2, ' ') << type << "\n";
  }
  return kExitOk;
}

}  // namespace ood::cli
