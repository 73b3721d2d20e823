#pragma once
// Evaluation: one model forward per batch shared by all detectors, fitting of the
// detectors that need it, scores for the ID set and every OOD set, and OODMetrics.
#include <ATen/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ood/augmentation.hpp"
#include "ood/core/data_loader.hpp"
#include "ood/core/metrics.hpp"
#include "ood/dataset.hpp"
#include "ood/detector.hpp"
#include "ood/model.hpp"
#include "ood/views.hpp"

namespace ood::core {

struct NamedDetector {
  std::string name;
  std::shared_ptr<Detector> detector;
  bool fits = false;  // fitted on the fit set in this run
  /// The plugin file that provides it ("" when unknown), named when it fails.
  std::string plugin_file;
};

struct EvalSet {
  std::string name;     // "in" or the OOD set's name
  std::string pointer;  // where it is described ("/data/out/noise")
  std::shared_ptr<const Dataset> dataset;
};

struct EvaluatorOptions {
  std::int64_t batch_size = 128;
  std::int64_t workers = 2;
  std::int64_t max_samples = 0;
  std::uint64_t seed = 0;
  at::Device device = at::kCPU;
};

/// Scores of one dataset, in dataset order.
struct SetScores {
  std::string name;
  bool ood = false;                 // the set's role: OOD sets are the positive class
  at::Tensor labels;                // [N] int64, the dataset's own labels
  at::Tensor indices;               // [N] int64, dataset indices
  std::vector<at::Tensor> scores;   // one [N] tensor per detector, in detector order (undefined: failed)
};

struct EvaluationResult {
  std::vector<std::string> detectors;
  SetScores in;
  std::vector<SetScores> out;
  /// metrics[o][d]: OOD set o against the ID set, detector d (zeros when it failed).
  std::vector<std::vector<OODMetricValues>> metrics;
  /// failures[d]: why detector d failed (fitting, scoring, its scores or metrics), ""
  /// when it did not. A failed detector has no scores or metrics; the others do.
  std::vector<std::string> failures;
  bool any_failed() const;
  double seconds_fit = 0;
  double seconds_score = 0;
  /// Of seconds_score, the time the scoring thread waited for the data loader's next
  /// batch (reading, decoding and transforming not hidden behind the model): a large
  /// share says the loader, not the model, sets the pace (raise evaluate.workers).
  double seconds_score_waiting_for_data = 0;
};

/// One detector's failure does not discard the others' results: fit() and score()
/// record it (failures()), skip that detector from then on, and carry on.
class Evaluator {
 public:
  Evaluator(std::shared_ptr<Model> model, std::vector<NamedDetector> detectors,
            std::vector<std::shared_ptr<const Augmentation>> transforms, EvaluatorOptions options);

  /// Fits every detector marked `fits` on `fit_set` (one forward per batch for all).
  void fit(const EvalSet& fit_set);
  /// Why each detector failed so far ("" for healthy ones), in detector order.
  const std::vector<std::string>& failures() const { return failures_; }
  /// The time fit() and score() waited for the loader's next batch so far.
  double seconds_waiting_for_data() const { return seconds_waiting_; }
  /// Scores one set with every detector.
  SetScores score(const EvalSet& set, bool ood);
  /// Scores the ID set and every OOD set, then computes the metrics of each OOD set
  /// against the ID set.
  EvaluationResult evaluate(const EvalSet& in, const std::vector<EvalSet>& out);

 private:
  LoaderOptions loader_options(const EvalSet& set) const;
  /// One Views for a batch, with every layer the detectors need computed together.
  void prefetch(Views& views) const;
  /// loader.next(), its wait added to seconds_waiting_.
  std::optional<Batch> next_batch(DataLoader& loader);
  std::shared_ptr<Model> model_;
  std::vector<NamedDetector> detectors_;
  std::vector<std::shared_ptr<const Augmentation>> transforms_;
  EvaluatorOptions options_;
  std::vector<std::string> layers_;  // union of the detectors' intermediate layers
  std::vector<std::string> failures_;
  double seconds_waiting_ = 0;
  void fail(std::size_t d, const std::string& what);
};

/// OODMetrics of one detector: `in` samples are IN, `out` samples OOD, whatever
/// labels the datasets carry (their role in the pipeline decides).
OODMetricValues metrics_for(const SetScores& in, const SetScores& out, std::size_t detector);

}  // namespace ood::core
