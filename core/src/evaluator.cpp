#include "ood/core/evaluator.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "ood/checks.hpp"
#include "ood/core/data_loader.hpp"
#include "ood/core/progress.hpp"
#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::core {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Evaluator::Evaluator(std::shared_ptr<Model> model, std::vector<NamedDetector> detectors,
                     std::vector<std::shared_ptr<const Augmentation>> transforms,
                     EvaluatorOptions options)
    : model_(std::move(model)),
      detectors_(std::move(detectors)),
      transforms_(std::move(transforms)),
      options_(options) {
  for (const auto& d : detectors_)
    for (const auto& layer : d.detector->needs().layers)
      if (std::find(layers_.begin(), layers_.end(), layer) == layers_.end()) layers_.push_back(layer);
  failures_.assign(detectors_.size(), "");
}

bool EvaluationResult::any_failed() const {
  for (const auto& f : failures)
    if (!f.empty()) return true;
  return false;
}

void Evaluator::fail(std::size_t d, const std::string& what) {
  if (!failures_[d].empty()) return;
  const NamedDetector& nd = detectors_[d];
  failures_[d] = "/detectors/" + nd.name + ": " + what +
                 (nd.plugin_file.empty() ? std::string() : " [plugin " + nd.plugin_file + "]");
  spdlog::error("{}", failures_[d]);
}

void Evaluator::prefetch(Views& views) const {
  if (!layers_.empty()) views.prefetch_layers(layers_);
}

std::optional<Batch> Evaluator::next_batch(DataLoader& loader) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<Batch> batch = loader.next();
  seconds_waiting_ += seconds_since(start);
  return batch;
}

LoaderOptions Evaluator::loader_options(const EvalSet& set) const {
  LoaderOptions lo;
  lo.batch_size = options_.batch_size;
  lo.workers = options_.workers;
  lo.max_samples = options_.max_samples;
  lo.seed = options_.seed;
  lo.name = set.pointer;
  return lo;
}

void Evaluator::fit(const EvalSet& fit_set) {
  std::vector<std::size_t> fitting;
  for (std::size_t d = 0; d < detectors_.size(); ++d)
    if (detectors_[d].fits && failures_[d].empty()) fitting.push_back(d);
  if (fitting.empty()) return;

  model_->set_mode(ModelMode::Eval);
  DataLoader loader(fit_set.dataset, transforms_, loader_options(fit_set));
  Progress progress("fit on " + fit_set.name, loader.num_batches());
  at::NoGradGuard no_grad;
  while (auto batch = next_batch(loader)) {
    Views views(*model_, batch->inputs.to(options_.device));
    prefetch(views);
    const at::Tensor fit_labels = batch->targets.to(options_.device, at::kLong);
    for (std::size_t d : fitting) {
      if (!failures_[d].empty()) continue;
      try {
        detectors_[d].detector->fit_batch(views, fit_labels);
      } catch (const std::exception& e) {
        fail(d, std::string("fitting failed: ") + e.what());
      }
    }
    progress.advance();
  }
  progress.finish();
  for (std::size_t d : fitting) {
    if (!failures_[d].empty()) continue;
    try {
      detectors_[d].detector->finish_fit();
    } catch (const std::exception& e) {
      fail(d, std::string("fitting failed: ") + e.what());
    }
  }
}

SetScores Evaluator::score(const EvalSet& set, bool ood) {
  model_->set_mode(ModelMode::Eval);
  for (std::size_t d = 0; d < detectors_.size(); ++d)
    if (failures_[d].empty() && !detectors_[d].detector->is_fitted())
      fail(d, "the detector is not fitted (give it \"fit\" or \"load_state\")");
  DataLoader loader(set.dataset, transforms_, loader_options(set));
  if (loader.num_samples() == 0) throw Error(set.pointer + ": the dataset is empty");

  std::vector<std::vector<at::Tensor>> parts(detectors_.size());
  std::vector<at::Tensor> labels, indices;
  Progress progress("score " + set.name, loader.num_batches());
  at::NoGradGuard no_grad;
  while (auto batch = next_batch(loader)) {
    const std::int64_t n = batch->inputs.size(0);
    // One Views per batch: the first detector that asks for logits or features runs
    // the model, every other detector reuses the cached result.
    Views views(*model_, batch->inputs.to(options_.device));
    prefetch(views);
    for (std::size_t d = 0; d < detectors_.size(); ++d) {
      if (!failures_[d].empty()) continue;
      at::Tensor s;
      try {
        s = detectors_[d].detector->score(views);
      } catch (const std::exception& e) {
        fail(d, "scoring " + set.name + " failed: " + e.what());
        continue;
      }
      // The contract is a floating tensor [N]: anything else is the plugin's bug.
      if (!s.defined() || s.dim() != 1 || s.size(0) != n || !at::isFloatingType(s.scalar_type())) {
        fail(d, "returned scores " + describe_tensor(s) + " for a batch of " + std::to_string(n) + " samples of " +
                    set.name + " (expected a floating tensor [" + std::to_string(n) +
                    "]): a bug in the detector's plugin, not in the pipeline");
        continue;
      }
      parts[d].push_back(s.detach().to(at::kCPU));
    }
    labels.push_back(batch->targets.to(at::kLong));
    indices.push_back(at::tensor(batch->indices, at::kLong));
    progress.advance(1, "");
  }
  progress.finish();

  SetScores out;
  out.name = set.name;
  out.ood = ood;
  out.labels = at::cat(labels);
  out.indices = at::cat(indices);
  // A detector that failed (now or before) has no scores for this set.
  for (std::size_t d = 0; d < parts.size(); ++d)
    out.scores.push_back(failures_[d].empty() && !parts[d].empty() ? at::cat(parts[d]) : at::Tensor());

  // The set's role decides IN/OOD for the metrics; labels that say otherwise are
  // most likely a forgotten class-filter or target transform.
  const std::int64_t contradicting =
      ood ? (out.labels >= 0).sum().item<std::int64_t>() : (out.labels < 0).sum().item<std::int64_t>();
  if (contradicting > 0)
    spdlog::warn("{}: {} of {} samples carry {} labels but the set is {}; they are evaluated as {}",
                 set.pointer, contradicting, out.labels.size(0), ood ? "in-distribution (>= 0)" : "OOD (< 0)",
                 ood ? "an OOD set" : "the in-distribution set", ood ? "OOD" : "IN");
  return out;
}

OODMetricValues metrics_for(const SetScores& in, const SetScores& out, std::size_t detector) {
  OODMetrics metrics;
  metrics.update(in.scores[detector], at::zeros({in.scores[detector].size(0)}, at::kLong));
  metrics.update(out.scores[detector], at::full({out.scores[detector].size(0)}, -1, at::kLong));
  return metrics.compute();
}

EvaluationResult Evaluator::evaluate(const EvalSet& in, const std::vector<EvalSet>& out) {
  EvaluationResult result;
  for (const auto& d : detectors_) result.detectors.push_back(d.name);
  const auto start = std::chrono::steady_clock::now();
  const double waited_before = seconds_waiting_;
  result.in = score(in, false);
  for (const auto& set : out) result.out.push_back(score(set, true));
  result.seconds_score = seconds_since(start);
  result.seconds_score_waiting_for_data = seconds_waiting_ - waited_before;
  for (const auto& o : result.out) {
    std::vector<OODMetricValues> row;
    for (std::size_t d = 0; d < detectors_.size(); ++d) {
      OODMetricValues m{0, 0, 0, 0};
      if (failures_[d].empty()) {
        try {
          m = metrics_for(result.in, o, d);
        } catch (const std::exception& e) {
          fail(d, "metrics on '" + o.name + "': " + e.what());
        }
      }
      row.push_back(m);
    }
    result.metrics.push_back(std::move(row));
  }
  result.failures = failures_;
  return result;
}

}  // namespace ood::core
