#pragma once
// Builds components from validated specs through the registry's factories; also the
// ood::Context that factories use to build nested components.
#include <vector>

#include "ood/context.hpp"
#include "ood/core/registry.hpp"

namespace ood::core {

class BuildContext final : public Context {
 public:
  BuildContext(const Registry& registry, std::uint64_t seed);

  std::shared_ptr<Model> make_model(const ComponentSpec& spec) override;
  std::shared_ptr<Detector> make_detector(const ComponentSpec& spec) override;
  std::shared_ptr<Loss> make_loss(const ComponentSpec& spec) override;
  std::shared_ptr<Dataset> make_dataset(const ComponentSpec& spec) override;
  std::shared_ptr<Augmentation> make_augmentation(const ComponentSpec& spec) override;
  std::uint64_t seed() const override { return seed_; }
  std::filesystem::path data_root() const override;

  /// Every component built so far (nested ones included), each once, in build order:
  /// the provenance written into metrics.json.
  const std::vector<const RegisteredComponent*>& used() const { return used_; }

 private:
  template <typename T, typename Factory>
  std::shared_ptr<T> make(Kind kind, const ComponentSpec& spec);
  const Registry& registry_;
  std::uint64_t seed_;
  std::vector<const RegisteredComponent*> used_;
};

/// $OOD_DATA_DIR, else $XDG_CACHE_HOME/ood/data, else ~/.cache/ood/data.
std::filesystem::path default_data_root();

}  // namespace ood::core
