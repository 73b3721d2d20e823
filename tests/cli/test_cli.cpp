// The `ood` command line through the built binary: every subcommand, exit codes,
// messages.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "cli_support.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

TEST(Cli, UsageAndVersion) {
  auto r = ood("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "usage: ood")) << r.output;
  r = ood("--help");
  EXPECT_EQ(r.exit_code, 0);
  r = ood("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "ood 0.")) << r.output;
  r = ood("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown command 'frobnicate'")) << r.output;
  r = ood("plugins --no-such-option");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "ood plugins: unrecognised option '--no-such-option'")) << r.output;
  r = ood("--log-level chatty plugins");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown level 'chatty'")) << r.output;
  r = ood("run --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "--set")) << r.output;
}

TEST(Cli, PluginsListsEveryComponent) {
  auto r = ood("plugins");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"max-softmax", "energy-based", "max-logit", "entropy", "wide-resnet", "fashion-mnist",
                           "gaussian-noise", "uniform-noise", "tensor-file", "class-filter", "normalize", "to-rgb",
                           "resize", "random-crop", "random-horizontal-flip", "cross-entropy"})
    EXPECT_TRUE(contains(r.output, name)) << name << "\n" << r.output;
  r = ood("plugins --kind detector");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "energy-based"));
  EXPECT_FALSE(contains(r.output, "wide-resnet"));
  EXPECT_FALSE(contains(r.output, "fashion-mnist"));
  EXPECT_TRUE(contains(r.output, " components from ")) << r.output;
  // pytorch-ood's 19 detectors, plus the detectors of the losses that define a score.
  for (const char* name : {"odin", "mahalanobis", "multi-mahalanobis", "rmd", "kl-matching", "knn", "vim", "dice", "she",
                           "react", "ash", "weighted-ebo", "temperature-scaling", "openmax", "mcd", "cac", "center",
                           "ii", "mchad", "deep-svdd", "ss-deep-svdd", "entropic-open-set", "objectosphere",
                           "confidence"})
    EXPECT_TRUE(contains(r.output, std::string("detector      ") + name + " ")) << name << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "28 components from ")) << r.output;
  r = ood("plugins --kind detectr");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown kind 'detectr'")) << r.output;
}

// `ood plugins --json` is kept as a golden file so that every change to a parameter
// shows up in review. Regenerate it with:
//   build/host/ood plugins --json > tests/fixtures/golden/plugins.json
TEST(Cli, PluginSchemasMatchTheGoldenFile) {
  auto r = run_command("'" + ood_binary() + "' plugins --json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(fixture("golden/plugins.json"));
  const json golden = json::parse(in);
  const json current = json::parse(r.output);
  EXPECT_EQ(current, golden) << "the plugins' schemas changed; if on purpose, regenerate tests/fixtures/golden/plugins.json";
}

TEST(Cli, DescribePrintsTheSchema) {
  auto r = ood("describe energy-based");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "energy-based (detector)"));
  EXPECT_TRUE(contains(r.output, "Liu, Wang, Owens & Li, Energy-based Out-of-distribution Detection, NeurIPS (2020)"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "float > 0")) << r.output;
  EXPECT_TRUE(contains(r.output, "temperature"));
  r = ood("describe wide-resnet");
  EXPECT_TRUE(contains(r.output, "(required)")) << r.output;
  EXPECT_TRUE(contains(r.output, "depth")) << r.output;
  r = ood("describe detector/entropy --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["name"], "entropy");
  r = ood("describe energi-based");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "no component named 'energi-based' (did you mean 'energy-based'?)")) << r.output;
  r = ood("describe");
  EXPECT_EQ(r.exit_code, 2);
}

fs::path write_file(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  return file;
}

TEST(Cli, ValidateReportsEveryMistakeWithItsPointer) {
  const fs::path dir = temp_dir("cli_validate");
  write_file(dir / "good.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10}},
    "data": {"in": {"plugin": "gaussian-noise"}, "out": {"u": {"plugin": "uniform-noise"}}},
    "detectors": {"msp": {"plugin": "max-softmax"}}})");
  auto r = ood("validate good.json", dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "good.json: valid pipeline (1 detectors, 1 OOD sets)")) << r.output;

  write_file(dir / "three.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": "16"}},
    "data": {"in": {"plugin": "gaussian-noise"}, "out": {"u": {"plugin": "uniform-nois"}}},
    "detectors": {"msp": {"plugin": "max-softmax", "params": {"temperature": 2}}}})");
  r = ood("validate three.json", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "three.json: invalid pipeline (3 errors)")) << r.output;
  EXPECT_TRUE(contains(r.output, "/model/params/depth: expected integer >= 10, got \"16\"")) << r.output;
  EXPECT_TRUE(contains(r.output, "/data/out/u/plugin: unknown dataset 'uniform-nois' (did you mean 'uniform-noise'?)"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/msp/params/temperature: unknown parameter 'temperature'")) << r.output;

  // --set applies before validation.
  r = ood("validate three.json --set model.params.depth=16 --set /data/out/u/plugin=uniform-noise"
          " --set detectors.msp.params={}",
          dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;

  write_file(dir / "syntax.json", "{\n  \"seed\": 1,\n  oops\n}");
  r = ood("validate syntax.json", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "syntax.json:3:")) << r.output;
  r = ood("validate missing.json", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "missing.json: no such pipeline file")) << r.output;
  r = ood("validate good.json --set nonsense", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "expected PATH=VALUE")) << r.output;
}

TEST(Cli, BrokenPluginsAreRefusedAndTheRestWorks) {
  const std::string broken = std::getenv("OOD_BROKEN_PLUGIN_DIR");
  auto r = ood("plugins --plugin-path '" + broken + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Wrong ABI version in plugin '" + broken + "/ood-wrong-abi.so': got " +
                                     std::to_string(OOD_PLUGIN_ABI_VERSION + 1) + ", this host is " +
                                     std::to_string(OOD_PLUGIN_ABI_VERSION)))
      << r.output;
  EXPECT_TRUE(contains(r.output, "test-good"));
  EXPECT_TRUE(contains(r.output, "energy-based"));
  EXPECT_TRUE(contains(r.output, "7 refused")) << r.output;
  // ood-duplicate.so provides energy-based too: a conflict, not a silent winner.
  EXPECT_TRUE(contains(r.output, "detector 'energy-based' is provided by 2 plugin files")) << r.output;
  // The same through $OOD_PLUGIN_PATH.
  r = run_command("OOD_PLUGIN_PATH='" + broken + "' '" + ood_binary() + "' plugins --kind detector");
  EXPECT_TRUE(contains(r.output, "test-good")) << r.output;
}

TEST(Cli, ThrowingFactoryFailsTheRunWithExitOne) {
  const fs::path dir = temp_dir("cli_factory");
  write_file(dir / "p.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 3, "depth": 10, "widen_factor": 1}},
    "data": {"in": {"plugin": "gaussian-noise", "params": {"size": 4}}, "out": {"u": {"plugin": "uniform-noise", "params": {"size": 4}}}},
    "detectors": {"t": {"plugin": "throwing-factory"}}})");
  auto r = ood("run p.json -q --threads 1 --plugin-path '" + std::string(std::getenv("OOD_BROKEN_PLUGIN_DIR")) + "'",
               dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/t: detector 'throwing-factory' (ood-throwing-factory.so): its factory "
                                 "failed: this factory always fails (a bug in plugin " +
                                     std::string(std::getenv("OOD_BROKEN_PLUGIN_DIR")) + "/ood-throwing-factory.so"))
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "p-results" / "metrics.json"));
}

}  // namespace
}  // namespace ood::test

namespace ood::test {
namespace {

// Fitting, saving the fitted state, and scoring later from the saved state alone, with
// the fitting test detector of tests/broken_plugins/ood-test-good.so.
TEST(Cli, FittedStateIsSavedAndLoaded) {
  const fs::path dir = temp_dir("cli_state");
  const std::string plugins = "--plugin-path '" + std::string(std::getenv("OOD_BROKEN_PLUGIN_DIR")) + "'";
  write_file(dir / "fit.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 3, "depth": 10, "widen_factor": 1}},
    "data": {"fit": {"plugin": "gaussian-noise", "params": {"size": 40, "seed": 1}},
             "in": {"plugin": "gaussian-noise", "params": {"size": 20, "seed": 2}},
             "out": {"u": {"plugin": "uniform-noise", "params": {"size": 20}}}},
    "detectors": {"m": {"plugin": "test-feature-mean", "fit": "fit", "save_state": "state/m.pt"}},
    "evaluate": {"batch_size": 16, "save_scores": true}})");
  auto r = ood("run fit.json --out a -q --threads 1 " + plugins, dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(dir / "state" / "m.pt"));
  EXPECT_TRUE(io::load_state_dict(dir / "state" / "m.pt").contains("mean"));

  // Without fitting data but with the saved state: the same scores.
  write_file(dir / "load.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 3, "depth": 10, "widen_factor": 1}},
    "data": {"in": {"plugin": "gaussian-noise", "params": {"size": 20, "seed": 2}},
             "out": {"u": {"plugin": "uniform-noise", "params": {"size": 20}}}},
    "detectors": {"m": {"plugin": "test-feature-mean", "load_state": "state/m.pt"}},
    "evaluate": {"batch_size": 16, "save_scores": true}})");
  r = ood("run load.json --out b -q --threads 1 " + plugins, dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_text(dir / "a" / "scores.csv"), read_text(dir / "b" / "scores.csv"));

  // A detector that must fit, given neither fitting data nor a state: exit 2, before any work.
  write_file(dir / "nofit.json", R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 3, "depth": 10, "widen_factor": 1}},
    "data": {"in": {"plugin": "gaussian-noise", "params": {"size": 4}}, "out": {"u": {"plugin": "uniform-noise", "params": {"size": 4}}}},
    "detectors": {"m": {"plugin": "test-feature-mean"}}})");
  r = ood("run nofit.json --out c -q --threads 1 " + plugins, dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/m: detector 'test-feature-mean' must be fitted")) << r.output;
  // A state file that does not exist: exit 1, named.
  r = ood("run load.json --out d -q --threads 1 --set detectors.m.load_state=state/none.pt " + plugins, dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/m/load_state")) << r.output;
  EXPECT_TRUE(contains(r.output, "state/none.pt")) << r.output;
  // A detector that does not fit, given "fit": exit 2.
  // (Not energy-based: the broken plugins' ood-duplicate.so makes that name a conflict.)
  r = ood("run fit.json --out e -q --threads 1 --set detectors.m.plugin=test-good --set detectors.m.save_state=x.pt " +
              plugins,
          dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/m/fit: detector 'test-good' does not fit")) << r.output;
}

}  // namespace
}  // namespace ood::test
