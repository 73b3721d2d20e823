#pragma once
// Writing results: metrics.json, metrics.md and scores.csv. Every file is written to
// a temporary name and renamed, so a failed run never leaves half a file.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "ood/core/evaluator.hpp"

namespace ood::core {

/// Writes `content` to `file` atomically (temporary file in the same directory, then
/// rename). Creates missing parent directories. Throws ood::FileError.
void write_file_atomically(const std::filesystem::path& file, const std::string& content);

/// {ood_set: {detector: {"AUROC": ..., "AUPR-IN": ..., "AUPR-OUT": ..., "FPR95TPR": ...}},
///  "_meta": meta} with fractions.
nlohmann::ordered_json metrics_json(const EvaluationResult& result, const nlohmann::ordered_json& meta);

/// The metrics as a Markdown table in percent (like pytorch-ood's README), one row per
/// detector and OOD set, plus the mean over OOD sets when there are several.
std::string metrics_markdown(const EvaluationResult& result);

/// CSV with columns dataset,index,label,<detector>...: one row per scored sample, the
/// scores with enough digits to round-trip (float32: 9, float64: 17).
std::string scores_csv(const EvaluationResult& result);

}  // namespace ood::core
