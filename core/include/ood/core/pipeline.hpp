#pragma once
// Pipeline descriptions: JSON -> validated plan.
//
// Everything is checked before anything runs, and every problem is reported (not
// just the first) with its JSON pointer.
#include <nlohmann/json.hpp>

#include <cstdint>
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

/// Nesting limit of pipeline JSON (objects and arrays, the document itself counting
/// as 1). Real pipelines need about 12; the limit keeps recursive copies, dumps and
/// validation of hostile documents far away from the stack's end.
inline constexpr std::size_t kMaxJsonDepth = 128;
/// Pipeline files are small; anything larger is refused before it is read.
inline constexpr std::uintmax_t kMaxPipelineBytes = 16u << 20;

/// Parses JSON text with the pipeline rules: comments allowed; duplicate keys, nesting
/// beyond kMaxJsonDepth and numbers beyond the range of a double are errors
/// (InvalidArgument or PipelineError, with the JSON pointer or file:line:column).
nlohmann::ordered_json parse_json_text(const std::string& text, const std::string& source);

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
  std::string optimizer = "sgd";    // sgd | adam | adamw
  std::vector<double> betas = {0.9, 0.999};  // adam, adamw
  std::int64_t warmup_epochs = 0;   // linear warm-up before the schedule
  std::optional<ComponentSpec> outliers;         // auxiliary OOD data, label -1
  std::vector<ComponentSpec> outlier_transforms;
  std::int64_t outlier_batch_size = 0;           // outliers per batch, 0 = batch_size
  std::int64_t checkpoint_every = 0;             // epochs between training states, 0 = at the end
  std::filesystem::path resume;                  // a training state to continue from
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
