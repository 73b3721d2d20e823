#pragma once
// Writing results: metrics.json, metrics.md and scores.csv. Every file is written to
// a temporary name and renamed, so a failed run never leaves half a file; a run's
// files are gathered in a staging folder and swapped in as one set (ResultStaging).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "ood/core/evaluator.hpp"

namespace ood::core {

/// Writes `content` to `file` atomically (temporary file in the same directory, then
/// rename). Creates missing parent directories. Throws ood::FileError.
void write_file_atomically(const std::filesystem::path& file, const std::string& content);

/// The output folder of one run. The constructor checks it before any work: the
/// name is non-empty and has no NUL, it is not the working directory or one of its
/// ancestors, an existing one is a writable directory, and its parent (created if
/// missing) takes a staging folder `.<name>.staging-<pid>-<random>` next to it
/// (which proves it writable). The run writes its files into dir(); commit() renames
/// the staging folder to the output folder if there is none yet; otherwise it moves
/// the files of the output folder that are not part of a result set (metrics.json,
/// metrics.md, scores.csv, model.pt) into the staging folder, exchanges the two
/// folders with one renameat2(RENAME_EXCHANGE), so every reader sees the whole old
/// set or the whole new one, and removes the old set. Commits into one parent folder are serialised with
/// flock() on the parent. SIGINT/SIGTERM while a staging folder exists remove it
/// (async-signal-safe) and end the process by the signal. The destructor removes an
/// uncommitted staging folder. Throws ood::FileError (errno text) or InvalidArgument.
class ResultStaging {
 public:
  explicit ResultStaging(const std::filesystem::path& out);
  ~ResultStaging();
  ResultStaging(const ResultStaging&) = delete;
  ResultStaging& operator=(const ResultStaging&) = delete;

  const std::filesystem::path& dir() const { return staging_; }
  const std::filesystem::path& out() const { return out_; }
  /// Swaps the staged files into place (see above). Call once.
  void commit();

 private:
  std::filesystem::path out_;
  std::filesystem::path staging_;
  bool committed_ = false;
};

/// {ood_set: {detector: {"AUROC": ..., "AUPR-IN": ..., "AUPR-OUT": ..., "FPR95TPR": ...}},
///  "_meta": meta} with fractions; a failed detector is {"failed": true, "error": why}.
nlohmann::ordered_json metrics_json(const EvaluationResult& result, const nlohmann::ordered_json& meta);

/// The metrics as a Markdown table in percent (like pytorch-ood's README), one row per
/// detector and OOD set, plus the mean over OOD sets when there are several.
std::string metrics_markdown(const EvaluationResult& result);

/// CSV with columns dataset,index,label,<detector>...: one row per scored sample, the
/// scores with enough digits to round-trip (float32: 9, float64: 17).
std::string scores_csv(const EvaluationResult& result);

}  // namespace ood::core
