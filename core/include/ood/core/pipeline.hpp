#pragma once
// Pipeline descriptions: JSON -> validated plan.
//
// Everything is checked before anything runs, and every problem is reported (not
// just the first) with its JSON pointer.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ood/core/registry.hpp"
#include "ood/core/validation.hpp"
#include "ood/error.hpp"
#include "ood/params.hpp"

namespace ood::core {

/// An invalid pipeline: all its diagnostics. what() lists them, one per line.
class PipelineError : public InvalidArgument {
 public:
  PipelineError(const std::string& source, std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

/// Reads and parses a pipeline file; a syntax error is reported with line and column.
nlohmann::ordered_json read_pipeline_file(const std::filesystem::path& file);
/// Parses pipeline text (`source` names it in messages).
nlohmann::ordered_json parse_pipeline_text(const std::string& text, const std::string& source);

/// Applies one `--set PATH=VALUE` override. PATH is a JSON pointer
/// ("/evaluate/batch_size") or a dotted path ("evaluate.batch_size"); VALUE is JSON
/// when it parses as JSON, else a string. Missing objects on the way are created.
void apply_override(nlohmann::ordered_json& document, const std::string& assignment);

struct DetectorPlan {
  std::string name;  // the key under "detectors"
  ComponentSpec spec;
  std::string fit_set;                   // "" when it does not fit
  std::filesystem::path load_state;      // "" when none
  std::filesystem::path save_state;      // "" when none
};

struct TrainPlan {
  ComponentSpec data;
  std::vector<ComponentSpec> transforms;
  ComponentSpec loss;
  std::int64_t epochs = 1;
  std::int64_t batch_size = 128;
  std::int64_t max_batches = 0;  // per epoch, 0 = all
  std::int64_t workers = 2;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = true;
  std::string schedule = "cosine";  // cosine | step | constant
  std::int64_t step_size = 1;       // epochs per step (step schedule)
  double gamma = 0.1;               // step schedule factor
  std::filesystem::path checkpoint; // "" = <out>/model.pt
};

struct EvaluatePlan {
  std::int64_t batch_size = 128;
  std::int64_t workers = 2;
  std::int64_t max_samples = 0;  // per dataset, 0 = all
  bool save_scores = false;
};

struct Pipeline {
  std::string source;  // file name (or "demo") for messages
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::optional<ComponentSpec> model;
  std::optional<TrainPlan> train;
  std::optional<ComponentSpec> fit_data;
  std::optional<ComponentSpec> in_data;
  std::vector<std::pair<std::string, ComponentSpec>> out_data;
  std::vector<ComponentSpec> transforms;  // applied to every evaluation set
  std::vector<DetectorPlan> detectors;
  EvaluatePlan evaluate;
  nlohmann::ordered_json normalized;  // the document with all defaults filled in
};

/// Validates `document` against the pipeline format and every plugin's schema.
/// Throws PipelineError listing every problem.
Pipeline parse_pipeline(const nlohmann::ordered_json& document, const Registry& registry,
                        const std::string& source);

}  // namespace ood::core
