#pragma once
// Helpers shared by the test programs: fixture files, the build tree's plugins, and
// building components the way a pipeline would (validated, defaults filled in).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ood/augmentation.hpp"
#include "ood/core/build_context.hpp"
#include "ood/core/registry.hpp"
#include "ood/dataset.hpp"
#include "ood/detector.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"

namespace ood::test {

/// tests/fixtures (from $OOD_FIXTURES_DIR, set by meson).
std::filesystem::path fixtures_dir();
/// A file under tests/fixtures; fails the test when it is missing.
std::filesystem::path fixture(const std::string& relative);
/// A fresh, empty directory for this test (removed at the end of the program).
std::filesystem::path temp_dir(const std::string& name);

/// A .pt fixture holding a dict of tensors.
c10::Dict<c10::IValue, c10::IValue> load_tensor_dict_file(const std::string& relative);
at::Tensor tensor_of(const c10::Dict<c10::IValue, c10::IValue>& dict, const std::string& key);

/// The registry with every plugin of the build tree loaded (once per program).
const core::Registry& registry();

/// Builds a component from JSON params through schema validation, as a pipeline does.
std::shared_ptr<Detector> make_detector(const std::string& plugin, const std::string& params_json = "{}");
std::shared_ptr<Model> make_model(const std::string& plugin, const std::string& params_json = "{}");
std::shared_ptr<Dataset> make_dataset(const std::string& plugin, const std::string& params_json = "{}");
std::shared_ptr<Augmentation> make_augmentation(const std::string& plugin, const std::string& params_json = "{}");
std::shared_ptr<Loss> make_loss(const std::string& plugin, const std::string& params_json = "{}");

/// Elementwise |a - b| <= atol + rtol |b| (NaN only where b is NaN), with a message
/// naming the worst element.
::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, double rtol,
                                     double atol);

/// The whole content of a text file ("" when it cannot be read).
std::string read_text(const std::filesystem::path& file);

/// Runs `command` through the shell; returns its exit code and combined output.
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult run_command(const std::string& command);

}  // namespace ood::test

namespace ood::test {

/// Scores `logits` with `detector` through Views, as the evaluator does.
at::Tensor score_logits(Detector& detector, const at::Tensor& logits);

/// The reference network's inputs and outputs (tests/fixtures/reference/data/data.pt).
const c10::Dict<c10::IValue, c10::IValue>& reference_data();

/// The reference network: wide-resnet (10 classes, depth 16, width 2) with
/// tests/fixtures/reference/model/wrn_state.pt, in eval mode (shared by the program).
std::shared_ptr<Model> reference_model();

/// Fits `detector` through Views as the evaluator does, on precomputed views (any of
/// `features`, `logits` may be undefined), in batches of `batch_size` rows.
void fit_on_views(Detector& detector, const at::Tensor& features, const at::Tensor& logits,
                  const at::Tensor& labels, std::int64_t batch_size = 32);
/// Scores precomputed views (either tensor may be undefined).
at::Tensor score_views(Detector& detector, const at::Tensor& features, const at::Tensor& logits);

/// Attaches `detector` to `model` (as `ood run` does), then fits it on model inputs
/// `x` in batches of `batch_size`, without autograd, as the evaluator does.
void fit_on_model(Detector& detector, Model& model, const at::Tensor& x, const at::Tensor& labels,
                  std::int64_t batch_size = 32);
/// Scores model inputs `x` in batches of `batch_size` (evaluator conditions: no
/// autograd, eval mode) and concatenates the scores.
at::Tensor score_on_model(Detector& detector, Model& model, const at::Tensor& x, std::int64_t batch_size = 64);

}  // namespace ood::test
