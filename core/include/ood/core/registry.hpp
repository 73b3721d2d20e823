#pragma once
// The runtime registry: every component the loaded plugins declared, keyed by kind
// and name, with the file it came from.
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ood/plugin.hpp"

namespace ood::core {

struct RegisteredComponent {
  ComponentInfo info;
  std::variant<ModelFactory, DetectorFactory, LossFactory, DatasetFactory, AugmentationFactory>
      factory;
  std::string plugin;                 // the plugin library's name
  std::filesystem::path plugin_file;  // where it was loaded from ("" for built-ins)
};

class Registry final : public Registrar {
 public:
  void add_model(ComponentInfo info, ModelFactory factory) override;
  void add_detector(ComponentInfo info, DetectorFactory factory) override;
  void add_loss(ComponentInfo info, LossFactory factory) override;
  void add_dataset(ComponentInfo info, DatasetFactory factory) override;
  void add_augmentation(ComponentInfo info, AugmentationFactory factory) override;

  /// Components added between begin_plugin() and commit_plugin() are attributed to
  /// that plugin; rollback_plugin() drops them (a plugin whose registration failed
  /// halfway leaves nothing behind).
  void begin_plugin(std::string plugin, std::filesystem::path file);
  void commit_plugin();
  void rollback_plugin();

  const RegisteredComponent* find(Kind kind, std::string_view name) const;
  /// Every component with this name, whatever its kind.
  std::vector<const RegisteredComponent*> find_any(std::string_view name) const;
  /// Components of one kind (or all), sorted by kind then name.
  std::vector<const RegisteredComponent*> list(std::optional<Kind> kind = std::nullopt) const;
  std::vector<std::string> names(Kind kind) const;
  std::vector<std::string> all_names() const;

 private:
  void add(ComponentInfo info, Kind expected, decltype(RegisteredComponent::factory) factory);
  std::vector<RegisteredComponent> components_;
  std::string current_plugin_;
  std::filesystem::path current_file_;
  std::size_t plugin_start_ = 0;
};

/// Whether `name` is a valid component or plugin name: lower-case kebab-case
/// ("energy-based", "wide-resnet", "cifar10").
bool is_valid_component_name(std::string_view name);

}  // namespace ood::core
