#include "ood/core/registry.hpp"

#include <algorithm>

#include "ood/error.hpp"

namespace ood::core {

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

void Registry::add(ComponentInfo info, Kind expected, decltype(RegisteredComponent::factory) factory) {
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
  if (const RegisteredComponent* existing = find(expected, info.name)) {
    const std::string where = existing->plugin_file.empty() ? std::string("built in")
                                                            : existing->plugin_file.string();
    throw Error(origin + ": duplicate " + std::string(to_string(expected)) + " '" + info.name +
                "', already provided by " + where);
  }
  components_.push_back(
      RegisteredComponent{std::move(info), std::move(factory), current_plugin_, current_file_});
}

void Registry::add_model(ComponentInfo info, ModelFactory factory) {
  add(std::move(info), Kind::Model, std::move(factory));
}
void Registry::add_detector(ComponentInfo info, DetectorFactory factory) {
  add(std::move(info), Kind::Detector, std::move(factory));
}
void Registry::add_loss(ComponentInfo info, LossFactory factory) {
  add(std::move(info), Kind::Loss, std::move(factory));
}
void Registry::add_dataset(ComponentInfo info, DatasetFactory factory) {
  add(std::move(info), Kind::Dataset, std::move(factory));
}
void Registry::add_augmentation(ComponentInfo info, AugmentationFactory factory) {
  add(std::move(info), Kind::Augmentation, std::move(factory));
}

void Registry::begin_plugin(std::string plugin, std::filesystem::path file) {
  current_plugin_ = std::move(plugin);
  current_file_ = std::move(file);
  plugin_start_ = components_.size();
}

void Registry::commit_plugin() {
  current_plugin_.clear();
  current_file_.clear();
  plugin_start_ = components_.size();
}

void Registry::rollback_plugin() {
  components_.resize(plugin_start_);
  commit_plugin();
}

const RegisteredComponent* Registry::find(Kind kind, std::string_view name) const {
  for (const auto& c : components_)
    if (c.info.kind == kind && c.info.name == name) return &c;
  return nullptr;
}

std::vector<const RegisteredComponent*> Registry::find_any(std::string_view name) const {
  std::vector<const RegisteredComponent*> out;
  for (const auto& c : components_)
    if (c.info.name == name) out.push_back(&c);
  return out;
}

std::vector<const RegisteredComponent*> Registry::list(std::optional<Kind> kind) const {
  std::vector<const RegisteredComponent*> out;
  for (const auto& c : components_)
    if (!kind || c.info.kind == *kind) out.push_back(&c);
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    if (a->info.kind != b->info.kind) return a->info.kind < b->info.kind;
    return a->info.name < b->info.name;
  });
  return out;
}

std::vector<std::string> Registry::names(Kind kind) const {
  std::vector<std::string> out;
  for (const auto* c : list(kind)) out.push_back(c->info.name);
  return out;
}

std::vector<std::string> Registry::all_names() const {
  std::vector<std::string> out;
  for (const auto* c : list()) out.push_back(c->info.name);
  return out;
}

}  // namespace ood::core
