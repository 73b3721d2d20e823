#pragma once
// Runs a validated pipeline: builds every component first (so a bad file or
// parameter fails before any work is done), trains if asked, fits and loads detector
// states, evaluates, and writes the results.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ood/core/pipeline.hpp"
#include "ood/core/registry.hpp"

namespace ood::core {

struct RunOptions {
  std::filesystem::path out_dir;
  int threads = 0;  // recorded in the metadata
};

struct RunSummary {
  std::string metrics_markdown;  // empty when the pipeline only trains
  std::filesystem::path metrics_json;
  std::filesystem::path checkpoint;  // empty without training
  double seconds = 0;
  /// Detectors that failed (fit, score, their scores or metrics), one message each,
  /// naming the detector and its plugin file. The others' results were written; the
  /// host exits with 1.
  std::vector<std::string> failures;
};

/// `_meta.components` of metrics.json: for every component built (nested ones too),
/// its kind, name, plugin, plugin file, plugin version, licence and the file's SHA-256.
nlohmann::ordered_json component_provenance(const std::vector<const RegisteredComponent*>& used);
/// `_meta.plugin_overrides`: the conflicts resolved with --override, and what they shadow.
nlohmann::ordered_json override_record(const Registry& registry);

RunSummary run_pipeline(const Pipeline& pipeline, const Registry& registry, const RunOptions& options);

}  // namespace ood::core
