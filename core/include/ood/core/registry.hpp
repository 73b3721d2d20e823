#pragma once
// The runtime registry: every component the loaded (or scanned) plugins declared,
// keyed by kind and name, with the plugin file it came from.
//
// Two plugin files may declare the same component (a third-party plugin named like a
// built-in, or two copies of one plugin on the search path). Neither silently wins:
// the name is recorded as a conflict, find() does not resolve it (so a pipeline using
// it fails validation naming both files), and only prefer() (the `--override` option)
// picks one, which is then recorded in the results.
//
// Components may be registered from the plugin scanner's cache before their library is
// loaded (`loaded == false`: metadata and schema only). use() loads such a library on
// first use through the lazy loader, so a command dlopens only the plugins it needs.
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ood/plugin.hpp"

namespace ood::core {

/// What is known about one plugin file (for `ood plugins` and the results' provenance).
struct PluginRecord {
  std::string name;
  std::string version;
  std::string summary;
  std::string license;
  std::string torch_build;
  std::filesystem::path file;
  /// SHA-256 of the file; computed on first use when empty (sha256()).
  mutable std::string sha256_hex;
  /// The file's SHA-256 as hex, computed once. Throws ood::FileError.
  const std::string& sha256() const;
};

struct RegisteredComponent {
  ComponentInfo info;
  std::variant<ModelFactory, DetectorFactory, LossFactory, DatasetFactory, AugmentationFactory>
      factory;
  std::string plugin;                 // the plugin library's name
  std::filesystem::path plugin_file;  // where it was loaded from ("" for built-ins)
  std::shared_ptr<const PluginRecord> record;  // null for built-ins
  /// False while only the scanner's metadata is known: no factory, no `check` yet.
  bool loaded = true;
  /// The scanned metadata says the component has a cross-parameter check.
  bool has_check = false;
};

/// A component name provided by more than one plugin file.
struct ComponentConflict {
  Kind kind;
  std::string name;
  std::vector<std::filesystem::path> files;  // in search order
  std::optional<std::filesystem::path> chosen;  // by prefer()
  /// "detector 'x' is provided by 2 plugin files: A and B"
  std::string message() const;
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
  void begin_plugin(std::shared_ptr<const PluginRecord> record);
  void commit_plugin();
  void rollback_plugin();
  /// Adds a component known from the scanner's cache only (no factory yet).
  void add_scanned(ComponentInfo info, bool has_check);

  /// Loads a plugin file and registers its components into the given registry; throws
  /// ood::Error naming the file when it is refused.
  using LazyLoader = std::function<void(const std::filesystem::path& file, Registry& into)>;
  void set_lazy_loader(LazyLoader loader) { lazy_loader_ = std::move(loader); }

  /// The component of this kind and name; nullptr when there is none or when several
  /// files provide it and none was chosen with prefer(). Never loads a library.
  const RegisteredComponent* find(Kind kind, std::string_view name) const;
  /// find(), then loads its library if only its metadata is known (factory and check
  /// become usable). Throws ood::Error when the library cannot be loaded.
  const RegisteredComponent* use(Kind kind, std::string_view name) const;
  /// Every provider of this kind and name, in search order.
  std::vector<const RegisteredComponent*> providers(Kind kind, std::string_view name) const;
  /// Every component with this name, whatever its kind (one per kind).
  std::vector<const RegisteredComponent*> find_any(std::string_view name) const;
  /// Components of one kind (or all), sorted by kind then name; a conflicting name is
  /// listed once per provider.
  std::vector<const RegisteredComponent*> list(std::optional<Kind> kind = std::nullopt) const;
  std::vector<std::string> names(Kind kind) const;
  std::vector<std::string> all_names() const;

  /// Names provided by several files.
  std::vector<ComponentConflict> conflicts() const;
  /// Chooses `file` for component `name` ("NAME" or "KIND/NAME") over every other
  /// provider. Throws ood::InvalidArgument when `file` provides no such component.
  void prefer(const std::string& name, const std::filesystem::path& file);
  /// The choices prefer() made that shadow another file, as in conflicts().
  std::vector<ComponentConflict> overrides() const;

 private:
  void add(ComponentInfo info, Kind expected, decltype(RegisteredComponent::factory) factory,
           bool loaded, bool has_check);
  void load_lazily(const RegisteredComponent& component) const;
  // A deque: pointers handed out stay valid while plugins are added. Mutable because a
  // lookup may load a library and fill in factories (the metadata does not change).
  mutable std::deque<RegisteredComponent> components_;
  std::vector<std::pair<std::pair<Kind, std::string>, std::filesystem::path>> preferred_;
  std::string current_plugin_;
  std::filesystem::path current_file_;
  std::shared_ptr<const PluginRecord> current_record_;
  std::size_t plugin_start_ = 0;
  LazyLoader lazy_loader_;
};

/// Whether `name` is a valid component or plugin name: lower-case kebab-case
/// ("energy-based", "wide-resnet", "cifar10").
bool is_valid_component_name(std::string_view name);

}  // namespace ood::core
