#pragma once
// Runs a validated pipeline: builds every component first (so a bad file or
// parameter fails before any work is done), trains if asked, fits and loads detector
// states, evaluates, and writes the results.
#include <filesystem>
#include <string>

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
};

RunSummary run_pipeline(const Pipeline& pipeline, const Registry& registry, const RunOptions& options);

}  // namespace ood::core
