#include "ood/core/registry.hpp"

#include <algorithm>
#include <set>

#include "ood/download/download.hpp"
#include "ood/error.hpp"

namespace ood::core {

namespace fs = std::filesystem;

bool is_valid_component_name(std::string_view name) {
  if (name.empty() || name.front() == '-' || name.back() == '-') return false;
  char previous = 0;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (c == '-' && previous == '-')) return false;
    previous = c;
  }
  return true;
}

const std::string& PluginRecord::sha256() const {
  if (sha256_hex.empty() && !file.empty()) sha256_hex = download::sha256_of_file(file);
  return sha256_hex;
}

std::string ComponentConflict::message() const {
  std::string m = std::string(to_string(kind)) + " '" + name + "' is provided by " + std::to_string(files.size()) +
                  " plugin files: ";
  for (std::size_t i = 0; i < files.size(); ++i)
    m += (i == 0 ? "" : i + 1 == files.size() ? " and " : ", ") + files[i].string();
  return m;
}

namespace {
fs::path canonical_or_same(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return ec ? p : c;
}
}  // namespace

void Registry::add(ComponentInfo info, Kind expected, decltype(RegisteredComponent::factory) factory, bool loaded,
                   bool has_check) {
  const std::string origin =
      current_file_.empty() ? std::string("built-in") : "plugin '" + current_file_.string() + "'";
  if (info.kind != expected)
    throw Error(origin + ": component '" + info.name + "' declares kind '" +
                std::string(to_string(info.kind)) + "' but was added as a " +
                std::string(to_string(expected)));
  if (!is_valid_component_name(info.name))
    throw Error(origin + ": invalid component name '" + info.name +
                "' (use lower-case kebab-case such as 'energy-based')");
  for (std::size_t i = 0; i < info.params.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (info.params[i].name() == info.params[j].name())
        throw Error(origin + ": component '" + info.name + "' declares parameter '" +
                    info.params[i].name() + "' twice");
  // The same file twice (or one plugin declaring a name twice) is a duplicate and
  // refused; another file declaring the name is a conflict (see the header).
  for (const auto& existing : components_) {
    if (existing.info.kind != expected || existing.info.name != info.name) continue;
    if (existing.plugin_file == current_file_) {
      const std::string where = existing.plugin_file.empty() ? std::string("built in")
                                                             : existing.plugin_file.string();
      throw Error(origin + ": duplicate " + std::string(to_string(expected)) + " '" + info.name +
                  "', already provided by " + where);
    }
  }
  if (!has_check) has_check = static_cast<bool>(info.check);
  components_.push_back(RegisteredComponent{std::move(info), std::move(factory), current_plugin_, current_file_,
                                            current_record_, loaded, has_check});
}

void Registry::add_model(ComponentInfo info, ModelFactory factory) {
  add(std::move(info), Kind::Model, std::move(factory), true, false);
}
void Registry::add_detector(ComponentInfo info, DetectorFactory factory) {
  add(std::move(info), Kind::Detector, std::move(factory), true, false);
}
void Registry::add_loss(ComponentInfo info, LossFactory factory) {
  add(std::move(info), Kind::Loss, std::move(factory), true, false);
}
void Registry::add_dataset(ComponentInfo info, DatasetFactory factory) {
  add(std::move(info), Kind::Dataset, std::move(factory), true, false);
}
void Registry::add_augmentation(ComponentInfo info, AugmentationFactory factory) {
  add(std::move(info), Kind::Augmentation, std::move(factory), true, false);
}

void Registry::add_scanned(ComponentInfo info, bool has_check) {
  const Kind kind = info.kind;
  decltype(RegisteredComponent::factory) none;
  switch (kind) {
    case Kind::Model: none = ModelFactory(); break;
    case Kind::Detector: none = DetectorFactory(); break;
    case Kind::Loss: none = LossFactory(); break;
    case Kind::Dataset: none = DatasetFactory(); break;
    case Kind::Augmentation: none = AugmentationFactory(); break;
  }
  add(std::move(info), kind, std::move(none), false, has_check);
}

void Registry::begin_plugin(std::string plugin, fs::path file) {
  auto record = std::make_shared<PluginRecord>();
  record->name = plugin;
  record->file = file;
  current_plugin_ = std::move(plugin);
  current_file_ = std::move(file);
  current_record_ = std::move(record);
  plugin_start_ = components_.size();
}

void Registry::begin_plugin(std::shared_ptr<const PluginRecord> record) {
  current_plugin_ = record->name;
  current_file_ = record->file;
  current_record_ = std::move(record);
  plugin_start_ = components_.size();
}

void Registry::commit_plugin() {
  current_plugin_.clear();
  current_file_.clear();
  current_record_.reset();
  plugin_start_ = components_.size();
}

void Registry::rollback_plugin() {
  components_.resize(plugin_start_);
  commit_plugin();
}

std::vector<const RegisteredComponent*> Registry::providers(Kind kind, std::string_view name) const {
  std::vector<const RegisteredComponent*> out;
  for (const auto& c : components_)
    if (c.info.kind == kind && c.info.name == name) out.push_back(&c);
  return out;
}

const RegisteredComponent* Registry::find(Kind kind, std::string_view name) const {
  const auto all = providers(kind, name);
  if (all.size() == 1) return all.front();
  if (all.empty()) return nullptr;
  for (const auto& [key, file] : preferred_)
    if (key.first == kind && key.second == name)
      for (const auto* c : all)
        if (c->plugin_file == file) return c;
  return nullptr;  // a conflict nobody resolved
}

const RegisteredComponent* Registry::use(Kind kind, std::string_view name) const {
  const RegisteredComponent* c = find(kind, name);
  if (c && !c->loaded) load_lazily(*c);
  return c;
}

void Registry::load_lazily(const RegisteredComponent& component) const {
  const fs::path file = component.plugin_file;
  if (!lazy_loader_)
    throw Error("plugin '" + file.string() + "': only its metadata is known and no loader is set");
  Registry loaded;
  lazy_loader_(file, loaded);
  // Every component the scan recorded for this file gets its factory and check; the
  // metadata stays the scanned one (it is what validation and listings used).
  for (auto& c : components_) {
    if (c.plugin_file != file || c.loaded) continue;
    const RegisteredComponent* fresh = nullptr;
    for (const auto* p : loaded.providers(c.info.kind, c.info.name))
      if (p->plugin_file == file) fresh = p;
    if (!fresh)
      throw Error("plugin '" + file.string() + "': it no longer provides " + std::string(to_string(c.info.kind)) +
                  " '" + c.info.name + "' (the file changed since it was scanned; run the command again)");
    c.factory = fresh->factory;
    c.info.check = fresh->info.check;
    c.loaded = true;
  }
}

std::vector<const RegisteredComponent*> Registry::find_any(std::string_view name) const {
  std::vector<const RegisteredComponent*> out;
  for (Kind kind : {Kind::Model, Kind::Detector, Kind::Loss, Kind::Dataset, Kind::Augmentation}) {
    const auto all = providers(kind, name);
    if (all.empty()) continue;
    const RegisteredComponent* chosen = find(kind, name);
    out.push_back(chosen ? chosen : all.front());
  }
  return out;
}

std::vector<const RegisteredComponent*> Registry::list(std::optional<Kind> kind) const {
  std::vector<const RegisteredComponent*> out;
  for (const auto& c : components_)
    if (!kind || c.info.kind == *kind) out.push_back(&c);
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    if (a->info.kind != b->info.kind) return a->info.kind < b->info.kind;
    return a->info.name < b->info.name;
  });
  return out;
}

std::vector<std::string> Registry::names(Kind kind) const {
  std::vector<std::string> out;
  for (const auto* c : list(kind))
    if (out.empty() || out.back() != c->info.name) out.push_back(c->info.name);
  return out;
}

std::vector<std::string> Registry::all_names() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* c : list())
    if (seen.insert(c->info.name).second) out.push_back(c->info.name);
  return out;
}

std::vector<ComponentConflict> Registry::conflicts() const {
  std::vector<ComponentConflict> out;
  std::set<std::pair<Kind, std::string>> seen;
  for (const auto& c : components_) {
    if (!seen.insert({c.info.kind, c.info.name}).second) continue;
    const auto all = providers(c.info.kind, c.info.name);
    if (all.size() < 2) continue;
    ComponentConflict conflict{c.info.kind, c.info.name, {}, std::nullopt};
    for (const auto* p : all) conflict.files.push_back(p->plugin_file);
    if (const auto* chosen = find(c.info.kind, c.info.name)) conflict.chosen = chosen->plugin_file;
    out.push_back(std::move(conflict));
  }
  return out;
}

void Registry::prefer(const std::string& name_text, const fs::path& file_text) {
  std::optional<Kind> kind;
  std::string name = name_text;
  if (const auto slash = name.find('/'); slash != std::string::npos) {
    kind = kind_from_string(name.substr(0, slash));
    if (!kind)
      throw InvalidArgument("--override " + name_text + ": unknown kind '" + name.substr(0, slash) +
                            "' (model, detector, loss, dataset, augmentation)");
    name = name.substr(slash + 1);
  }
  const fs::path file = canonical_or_same(file_text);
  bool matched = false;
  for (Kind k : {Kind::Model, Kind::Detector, Kind::Loss, Kind::Dataset, Kind::Augmentation}) {
    if (kind && *kind != k) continue;
    for (const auto* c : providers(k, name)) {
      if (c->plugin_file != file) continue;
      preferred_.push_back({{k, name}, file});
      matched = true;
    }
  }
  if (!matched)
    throw InvalidArgument("--override " + name_text + "=" + file_text.string() + ": " + file.string() +
                          " provides no component named '" + name + "' (or it was refused; see the warnings)");
}

std::vector<ComponentConflict> Registry::overrides() const {
  std::vector<ComponentConflict> out;
  for (auto& c : conflicts())
    if (c.chosen) out.push_back(std::move(c));
  return out;
}

}  // namespace ood::core
