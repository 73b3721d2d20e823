#pragma once
// What a component's factory can ask of the host while it is being built: nested
// components, the pipeline's seed, and where datasets and downloads live.
#include <cstdint>
#include <filesystem>
#include <memory>

#include "ood/export.hpp"
#include "ood/params.hpp"

namespace ood {

class Augmentation;
class Dataset;
class Detector;
class Loss;
class Model;

class OOD_SDK_API Context {
 public:
  virtual ~Context();

  virtual std::shared_ptr<Model> make_model(const ComponentSpec& spec) = 0;
  virtual std::shared_ptr<Detector> make_detector(const ComponentSpec& spec) = 0;
  virtual std::shared_ptr<Loss> make_loss(const ComponentSpec& spec) = 0;
  virtual std::shared_ptr<Dataset> make_dataset(const ComponentSpec& spec) = 0;
  virtual std::shared_ptr<Augmentation> make_augmentation(const ComponentSpec& spec) = 0;

  /// The pipeline's seed; components derive their own streams from it.
  virtual std::uint64_t seed() const = 0;
  /// Default root for datasets that download: $OOD_DATA_DIR, else
  /// $XDG_CACHE_HOME/ood/data, else ~/.cache/ood/data.
  virtual std::filesystem::path data_root() const = 0;
};

}  // namespace ood
