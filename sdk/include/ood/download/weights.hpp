#pragma once
// The weights store: named pretrained weight sets (pytorch-ood's WideResNets,
// torchvision's ImageNet ResNets), where they come from, how to check them, which model
// parameters they fit and how inputs must be preprocessed for them; downloaded on first
// use into $OOD_HOME/weights (default ~/.cache/ood/weights).
//
// $OOD_WEIGHTS_REGISTRY names a JSON file that adds entries or overrides fields of
// built-in ones (private mirrors, air-gapped sites, tests):
//   {"<name>": {"url": "...", "sha256": "...", "architecture": "resnet",
//               "model_params": {"depth": 50}, "file_name": "...", "description": "..."}}
// Only "url" is required for a new name; unknown fields are errors.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ood/download/download.hpp"
#include "ood/export.hpp"

namespace ood::download {

/// Evaluation preprocessing that belongs to a weight set, applied in this order:
/// resize, centre crop, [0, 1] scaling, normalisation.
struct Preprocessing {
  /// {} no resize; {s}: shorter side to s (torchvision); {h, w}: exactly h x w (pytorch-ood).
  std::vector<std::int64_t> resize;
  std::int64_t center_crop = 0;  // 0: none
  std::vector<double> mean, std;
  bool to_rgb = false;           // grey images to RGB first (pytorch-ood's ToRGB)
  std::string interpolation = "bilinear";
  std::string source;            // where the numbers come from
};

struct WeightsEntry {
  std::string name;          // "cifar10-pt", "resnet50-imagenet1k-v2"
  std::string architecture;  // the model plugin: "wide-resnet", "resnet"
  std::string model_params;  // JSON object of the parameters they fit: {"depth": 40, ...}
  std::string url;
  /// Published SHA-256 (whole or a prefix of >= 8 hex digits); "" where the publisher
  /// gives none: then the first download's digest is recorded and later uses are
  /// checked against it (and a warning says so).
  std::string sha256;
  std::string file_name;     // name in the cache folder
  std::string description;
  std::optional<Preprocessing> preprocessing;  // none known for this entry
  std::string origin;        // "built-in" or the registry file that defined/changed it
};

/// Built-in entries, then those of $OOD_WEIGHTS_REGISTRY (read on every call). Throws
/// ood::FileError naming the file and the entry for a malformed registry file.
OOD_SDK_API std::vector<WeightsEntry> weights_registry();
/// The entry named `name`, if any.
OOD_SDK_API std::optional<WeightsEntry> find_weights(const std::string& name);

/// $OOD_HOME/weights, default ~/.cache/ood/weights.
OOD_SDK_API std::filesystem::path weights_dir();
/// Where an entry's file is (or will be) cached.
OOD_SDK_API std::filesystem::path cached_weights_path(const WeightsEntry& entry);

/// The cached file of `entry`, downloaded and verified first when absent. A cached file
/// is verified against the published or recorded sha256 (a mismatch removes it and
/// fails naming both sums). Throws ood::FileError (see download_file).
OOD_SDK_API std::filesystem::path fetch_weights(const WeightsEntry& entry, const DownloadOptions& options = {});

/// A model's `weights` parameter: an existing file is returned as it is; a registry
/// name is fetched (its entry is returned through `entry` when given), after checking
/// that it is for `architecture` (else ood::InvalidArgument starting with `pointer`);
/// anything else is returned unchanged, so that the loader reports the missing file.
OOD_SDK_API std::filesystem::path resolve_weights(const std::string& value, const std::string& architecture,
                                                  const std::string& pointer, WeightsEntry* entry = nullptr);

}  // namespace ood::download
