#pragma once
// ood's plugin test kit: unit tests for a plugin built out of tree, against the
// installed SDK (pkg-config `ood-testkit`), the way GStreamer ships gst-check.
//
// It loads plugin files with the host's own loader (same checks, same refusals),
// builds components from JSON params through the host's schema validation (so the
// factory gets what `ood run` would give it: validated, defaults filled in, nested
// components normalised), and offers Views helpers, a small linear model and checks
// that throw testkit::Failure. No test framework is needed: `Suite` runs named cases
// and returns an exit code for meson's `test()`; with GoogleTest, call the checks
// inside TEST bodies (a Failure is an exception, which GoogleTest reports).
//
//   ood::testkit::Plugins plugins(argv[1]);          // the built ood-NAME.so
//   auto det = plugins.make_detector("my-detector", R"({"t": 2})");
//   ood::testkit::check_close(ood::testkit::score_logits(*det, logits), expected);
#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ood/augmentation.hpp"
#include "ood/context.hpp"
#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/detector.hpp"
#include "ood/kind.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"
#include "ood/params.hpp"
#include "ood/plugin.hpp"

// Plugins and their tests are compiled with hidden visibility (ood-sdk.pc says so);
// the kit's API must stay visible.
#define OOD_TESTKIT_API __attribute__((visibility("default")))

namespace ood::testkit {

/// A failed check. Its message says what was expected and what came instead.
class OOD_TESTKIT_API Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~Failure() override;
};

/// One component of the loaded plugins.
struct ComponentEntry {
  Kind kind;
  std::string name;
  std::string summary;
  std::string plugin;                 // the plugin library's name (OOD_PLUGIN's first argument)
  std::filesystem::path plugin_file;  // the file it came from
};

/// Plugin files loaded into a registry of their own, and components built from them as
/// `ood run` builds them.
class OOD_TESTKIT_API Plugins {
 public:
  /// Loads each path: a plugin file `ood-NAME.so`, or a directory searched for them.
  /// Throws ood::Error naming the file and the loader's reason when one is refused
  /// (wrong ABI or LibTorch, no entry point, a registration that throws, ...) and
  /// when a path holds no plugin. Nothing else is loaded (no $OOD_PLUGIN_PATH, no
  /// installed plugins): add installed_plugins_dir() to build with the built-ins too.
  explicit Plugins(const std::vector<std::filesystem::path>& paths, std::uint64_t seed = 0);
  explicit Plugins(const std::filesystem::path& path, std::uint64_t seed = 0);
  ~Plugins();
  Plugins(const Plugins&) = delete;
  Plugins& operator=(const Plugins&) = delete;

  /// Every component, sorted by kind and name.
  std::vector<ComponentEntry> components() const;
  /// A component's declaration (summary, doc, parameters). Throws ood::InvalidArgument
  /// when there is none of that kind and name.
  const ComponentInfo& info(Kind kind, const std::string& name) const;

  /// `params_json` validated against the component's schema (types, bounds, unknown
  /// and missing names, nested components, its `check`) with every default filled in,
  /// as JSON text. Throws ood::InvalidArgument listing every problem, each with its
  /// JSON pointer under "/test" (e.g. "/test/params/t: expected float > 0, got 0").
  std::string validated_params(Kind kind, const std::string& name, const std::string& params_json = "{}") const;
  /// The same as the Params its factory receives.
  Params params(Kind kind, const std::string& name, const std::string& params_json = "{}") const;

  /// Builds a component from validated params through its factory (errors as above,
  /// or whatever the factory throws).
  std::shared_ptr<Detector> make_detector(const std::string& name, const std::string& params_json = "{}");
  std::shared_ptr<Model> make_model(const std::string& name, const std::string& params_json = "{}");
  std::shared_ptr<Loss> make_loss(const std::string& name, const std::string& params_json = "{}");
  std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& params_json = "{}");
  std::shared_ptr<Augmentation> make_augmentation(const std::string& name, const std::string& params_json = "{}");

  /// The Context factories receive (nested components from these plugins, the seed).
  Context& context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The directory where `ood` finds installed plugins with no --plugin-path (the
/// `pluginsdir` of ood-sdk.pc), derived from where this library was loaded from.
OOD_TESTKIT_API std::filesystem::path installed_plugins_dir();

// ---------------------------------------------------------------- views and models

/// Scores precomputed views, as the evaluator would (no autograd). Either tensor may
/// be undefined (`at::Tensor()`); a detector asking for a view not given gets
/// ood::StateError.
OOD_TESTKIT_API at::Tensor score(Detector& detector, const at::Tensor& logits, const at::Tensor& features);
OOD_TESTKIT_API at::Tensor score_logits(Detector& detector, const at::Tensor& logits);
OOD_TESTKIT_API at::Tensor score_features(Detector& detector, const at::Tensor& features);
/// Fits on precomputed views in batches of `batch_size` rows (labels: int64 [N], < 0
/// for OOD samples), then calls finish_fit().
OOD_TESTKIT_API void fit(Detector& detector, const at::Tensor& logits, const at::Tensor& features,
                         const at::Tensor& labels, std::int64_t batch_size = 64);

/// attach(model), then fit_batch over Views(model, inputs) in batches (evaluation
/// mode, no autograd) and finish_fit().
OOD_TESTKIT_API void fit_on_model(Detector& detector, Model& model, const at::Tensor& inputs,
                                  const at::Tensor& labels, std::int64_t batch_size = 64);
/// Scores model inputs in batches as the evaluator does (attach() is the caller's:
/// call detector.attach(model) first when the detector was not fitted on it).
OOD_TESTKIT_API at::Tensor score_on_model(Detector& detector, Model& model, const at::Tensor& inputs,
                                          std::int64_t batch_size = 64);

/// A loss's value on given logits (and features) with autograd on, as training
/// computes it. Either tensor may be undefined.
OOD_TESTKIT_API at::Tensor loss_value(Loss& loss, const at::Tensor& logits, const at::Tensor& features,
                                      const at::Tensor& targets);

/// An augmentation applied to one sample with a generator seeded from `seed`.
OOD_TESTKIT_API Sample apply(const Augmentation& augmentation, Sample sample, std::uint64_t seed = 0);

/// A model for detector tests: its inputs are its features [N, D], its head one linear
/// layer, logits = x W^T + b. It has features, a linear head and input gradients
/// (weight and bias require grad), no feature map and no intermediate layers.
class OOD_TESTKIT_API LinearModel final : public Model {
 public:
  /// weight [C, D], bias [C] (floating).
  LinearModel(at::Tensor weight, at::Tensor bias);
  /// Random weights from a generator seeded with `seed` (uniform in +-1/sqrt(D)).
  static std::shared_ptr<LinearModel> random(std::int64_t num_classes, std::int64_t feature_dim,
                                             std::uint64_t seed = 0);
  ~LinearModel() override;

  at::Tensor features(const at::Tensor& inputs) override;
  at::Tensor head(const at::Tensor& features) override;
  std::optional<LinearHead> linear_head() override;
  void set_mode(ModelMode mode) override;
  ModelMode mode() const override;
  void to(at::Device device) override;
  at::Device device() const override;
  std::vector<at::Tensor> parameters() override;
  TensorDict state_dict() const override;
  void load_state_dict(const TensorDict& state) override;
  ModelInfo info() const override;

 private:
  at::Tensor weight_, bias_;
  ModelMode mode_ = ModelMode::Eval;
};

// ---------------------------------------------------------------- checks

/// Throws Failure(message) unless `condition` holds.
OOD_TESTKIT_API void check(bool condition, const std::string& message);
/// Throws Failure(message).
[[noreturn]] OOD_TESTKIT_API void fail(const std::string& message);

/// Same shape, and |actual - expected| <= atol + rtol * |expected| elementwise (NaN
/// only where expected is NaN); otherwise a Failure naming the worst element.
OOD_TESTKIT_API void check_close(const at::Tensor& actual, const at::Tensor& expected, double rtol = 1e-5,
                                 double atol = 1e-6, const std::string& what = "tensor");
/// What the host requires of a detector's scores for `rows` samples: a floating
/// tensor of shape [rows], finite (unless `allow_nonfinite`).
OOD_TESTKIT_API void check_scores(const at::Tensor& scores, std::int64_t rows, bool allow_nonfinite = false);
/// A dataset's contract: size() >= 1, get(i) deterministic (the same twice) and
/// within info().input_shape when that is given, labels() of size() int64 values
/// that agree with get(i).label() for the first `samples` indices.
OOD_TESTKIT_API void check_dataset(const Dataset& dataset, std::int64_t samples = 8);

/// Runs `body`, which must throw an `E` (ood::Error by default; ood::InvalidArgument,
/// ood::ShapeError, ...) whose message contains `contains`. Returns the message.
template <typename E = Error, typename F>
std::string check_throws(F&& body, std::string_view contains = "") {
  try {
    body();
  } catch (const E& e) {
    const std::string what = e.what();
    if (what.find(contains) == std::string::npos)
      fail("the error \"" + what + "\" does not contain \"" + std::string(contains) + "\"");
    return what;
  } catch (const std::exception& e) {
    fail(std::string("threw another exception type than expected: ") + e.what());
  }
  fail("threw nothing; expected an error" +
       (contains.empty() ? std::string() : " containing \"" + std::string(contains) + "\""));
}

// ---------------------------------------------------------------- a runner

/// Named test cases run in order; each passes unless it throws. For a plain test
/// program (meson `test()`): `return suite.run(argc, argv);`.
class OOD_TESTKIT_API Suite {
 public:
  explicit Suite(std::string name);
  Suite& add(std::string name, std::function<void()> body);
  /// Runs the cases (only those whose name contains argv's `--filter=TEXT`), prints
  /// "ok NAME" or "FAIL NAME: message" for each and a summary line; returns 0 when
  /// every case passed, 1 otherwise.
  int run(int argc = 0, char** argv = nullptr) const;

 private:
  std::string name_;
  std::vector<std::pair<std::string, std::function<void()>>> cases_;
};

}  // namespace ood::testkit
