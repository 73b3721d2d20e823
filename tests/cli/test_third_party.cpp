// Third-party plugins as a first-class path (issue 10, part A), through the binary:
// no silent shadowing, provenance, isolation of failures, plugin bugs reported as
// such, a mistyped --plugin-path, and isolated scanning with its cache.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "cli_support.hpp"
#include "ood/download/download.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path env_dir(const char* name) {
  const char* d = std::getenv(name);
  if (!d) throw std::runtime_error(std::string(name) + " is not set (run through meson test)");
  return d;
}
fs::path broken(const std::string& file) { return env_dir("OOD_BROKEN_PLUGIN_DIR") / file; }

// A working folder with the reference network and data, and a pipeline whose
// detectors are `detectors` (a JSON object text).
fs::path workdir(const std::string& name, const std::string& detectors) {
  const fs::path dir = temp_dir(name);
  fs::create_directories(dir / "ref");
  fs::copy_file(fixture("reference/model/wrn_state.pt"), dir / "ref" / "wrn_state.pt");
  fs::copy_file(fixture("reference/data/data.pt"), dir / "ref" / "data.pt");
  std::ofstream(dir / "p.json") << R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": 16,
           "widen_factor": 2, "weights": "ref/wrn_state.pt"}},
 "data": {"in":  {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_in",  "labels": "y_in"}},
          "fit": {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_in",  "labels": "y_in"}},
          "out": {"noise": {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_out", "labels": "y_out"}}}},
 "detectors": )" + detectors + R"(,
 "evaluate": {"batch_size": 32, "save_scores": true}})";
  return dir;
}

// Runs ood in `dir` with extra environment settings `env`.
CommandResult ood_in(const fs::path& dir, const std::string& args, const std::string& env = "") {
  return run_command("cd '" + dir.string() + "' && " + env + " '" + ood_binary() + "' " + args);
}

json metrics_of(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

// ------------------------------------------------------------------ 1. no silent shadowing

TEST(ThirdParty, ANameTwoFilesProvideIsAnErrorNamingBoth) {
  const fs::path dir = workdir("shadow", R"({"e": {"plugin": "energy-based"}})");
  const std::string dup = broken("ood-duplicate.so").string();
  auto r = ood_in(dir, "--plugin-path " + dup + " plugins --kind detector");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "detector 'energy-based' is provided by 2 plugin files: " + dup + " and ")) << r.output;
  EXPECT_TRUE(contains(r.output, "ood-energy-based.so")) << r.output;
  EXPECT_TRUE(contains(r.output, "[CONFLICT: " + dup + "]")) << r.output;

  // A pipeline using the name fails validation (exit 2) naming both files...
  r = ood_in(dir, "--plugin-path " + dup + " validate p.json");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/e/plugin: detector 'energy-based' is provided by 2 plugin files: " + dup))
      << r.output;
  EXPECT_TRUE(contains(r.output, "--override energy-based=FILE")) << r.output;
  r = ood_in(dir, "--plugin-path " + dup + " run p.json -q --out res");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(dir / "res"));

  // ...one that does not use it still works.
  const fs::path other = workdir("shadow_other", R"({"msp": {"plugin": "max-softmax"}})");
  r = ood_in(other, "--plugin-path " + dup + " validate p.json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(ThirdParty, OverrideChoosesAFileAndIsRecorded) {
  const fs::path dir = workdir("override", R"({"e": {"plugin": "energy-based"}})");
  const std::string dup = broken("ood-duplicate.so").string();
  auto r = ood_in(dir, "--override energy-based=" + dup + " run p.json -q --out res");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "--override energy-based=" + dup)) << r.output;  // logged
  const json m = metrics_of(dir / "res" / "metrics.json");
  ASSERT_EQ(m["_meta"]["plugin_overrides"].size(), 1u) << m["_meta"].dump(2);
  const json& o = m["_meta"]["plugin_overrides"][0];
  EXPECT_EQ(o["name"], "energy-based");
  EXPECT_EQ(o["file"], dup);
  ASSERT_EQ(o["instead_of"].size(), 1u);
  EXPECT_TRUE(contains(o["instead_of"][0].get<std::string>(), "ood-energy-based.so"));
  // The component really came from the chosen file.
  bool found = false;
  for (const auto& c : m["_meta"]["components"])
    if (c["name"] == "energy-based") found = c["file"] == dup;
  EXPECT_TRUE(found) << m["_meta"]["components"].dump(2);

  // A file that does not provide the name is refused (exit 2).
  r = ood_in(dir, "--override max-softmax=" + dup + " validate p.json");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "provides no component named 'max-softmax'")) << r.output;
}

// ------------------------------------------------------------------ 2. provenance

TEST(ThirdParty, MetricsRecordEveryComponentsFileVersionLicenceAndHash) {
  const fs::path dir = workdir("provenance", R"({"msp": {"plugin": "max-softmax"}})");
  auto r = ood_in(dir, "run p.json -q --out res");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json meta = metrics_of(dir / "res" / "metrics.json")["_meta"];
  EXPECT_TRUE(contains(meta["libtorch_build"].get<std::string>(), "+cpu") ||
              contains(meta["libtorch_build"].get<std::string>(), "+cuda"));
  std::set<std::string> names;
  for (const auto& c : meta["components"]) {
    names.insert(c["kind"].get<std::string>() + "/" + c["name"].get<std::string>());
    const fs::path file = c["file"].get<std::string>();
    EXPECT_EQ(file.filename(), "ood-" + c["plugin"].get<std::string>() + ".so");
    EXPECT_EQ(c["version"], OOD_VERSION);
    EXPECT_EQ(c["license"], "MIT");
    EXPECT_EQ(c["sha256"], download::sha256_of_file(file)) << file;
  }
  EXPECT_EQ(names, (std::set<std::string>{"model/wide-resnet", "dataset/tensor-file", "detector/max-softmax"}));
}

TEST(ThirdParty, PluginsShowVersions) {
  auto r = ood_in(temp_dir("versions"), "plugins --kind detector");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "VERSION")) << r.output;
  bool listed = false;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("detector      energy-based ", 0) == 0) listed = contains(line, std::string(" ") + OOD_VERSION + " ");
  EXPECT_TRUE(listed) << r.output;
  r = ood_in(temp_dir("versions"), "describe energy-based");
  EXPECT_TRUE(contains(r.output, std::string("version ") + OOD_VERSION + ", licence MIT")) << r.output;
}

// ------------------------------------------------------------------ 3./4. failures and plugin bugs

TEST(ThirdParty, AFailingDetectorKeepsTheOthersResults) {
  const fs::path dir = workdir("isolation", R"({"msp": {"plugin": "max-softmax"},
      "boom": {"plugin": "test-throws-in-score"}, "fitboom": {"plugin": "test-throws-in-fit", "fit": "fit"},
      "shape": {"plugin": "test-wrong-shape"}, "dtype": {"plugin": "test-wrong-dtype"},
      "energy": {"plugin": "energy-based"}})");
  const std::string good = broken("ood-test-good.so").string();
  auto r = ood_in(dir, "--plugin-path " + good + " run p.json -q --out res");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/boom: scoring in failed: score blew up [plugin " + good + "]")) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/fitboom: fitting failed: fit_batch blew up [plugin " + good + "]"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/shape: returned scores Float [32, 10]")) << r.output;
  EXPECT_TRUE(contains(r.output, "a bug in the detector's plugin, not in the pipeline [plugin " + good + "]"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/dtype: returned scores Long [32]")) << r.output;

  const json m = metrics_of(dir / "res" / "metrics.json");
  for (const char* healthy : {"msp", "energy"}) {
    EXPECT_TRUE(m["noise"][healthy]["AUROC"].is_number()) << m["noise"].dump(2);
    EXPECT_FALSE(m["noise"][healthy].contains("failed")) << healthy;
  }
  for (const char* failed : {"boom", "fitboom", "shape", "dtype"}) {
    EXPECT_EQ(m["noise"][failed]["failed"], true) << failed;
    EXPECT_TRUE(contains(m["noise"][failed]["error"].get<std::string>(), good)) << m["noise"][failed];
    EXPECT_TRUE(m["_meta"]["failed_detectors"].contains(failed));
  }
  EXPECT_TRUE(fs::exists(dir / "res" / "scores.csv"));
  EXPECT_TRUE(contains(read_text(dir / "res" / "metrics.md"), "| boom | *failed* |"));
}

TEST(ThirdParty, PluginBugsAreReportedAsThePluginsFault) {
  const std::string good = broken("ood-test-good.so").string();
  const fs::path dir = workdir("undeclared", R"({"u": {"plugin": "test-undeclared-param"}})");
  auto r = ood_in(dir, "--plugin-path " + good + " run p.json -q --out res");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/u/params/temperature: the plugin reads parameter 'temperature', which "
                                 "its schema does not declare (a bug in detector 'test-undeclared-param' of plugin " +
                                     good + ", not in the pipeline)"))
      << r.output;

  const std::string throwing = broken("ood-throwing-factory.so").string();
  const fs::path dir2 = workdir("throwing", R"({"t": {"plugin": "throwing-factory"}})");
  r = ood_in(dir2, "--plugin-path " + throwing + " run p.json -q --out res");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "its factory failed: this factory always fails (a bug in plugin " + throwing +
                                     ", not in the pipeline"))
      << r.output;
}

// ------------------------------------------------------------------ 7. a mistyped --plugin-path

TEST(ThirdParty, AMissingPluginPathIsAnError) {
  auto r = ood_in(temp_dir("missing_path"), "--plugin-path /no/such/plugins plugins");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--plugin-path /no/such/plugins: no such file or directory")) << r.output;
  // $OOD_PLUGIN_PATH entries only warn (often set once for many machines).
  r = ood_in(temp_dir("missing_path"), "plugins", "OOD_PLUGIN_PATH=/no/such/dir");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "OOD_PLUGIN_PATH: '/no/such/dir' does not exist")) << r.output;
}

// ------------------------------------------------------------------ 8. isolated scanning

TEST(ThirdParty, CrashingAndHangingPluginsAreRefusedAndTheCommandGoesOn) {
  const fs::path unsafe = env_dir("OOD_UNSAFE_PLUGIN_DIR");
  const fs::path dir = workdir("scan", R"({"msp": {"plugin": "max-softmax"}})");
  const auto start = std::chrono::steady_clock::now();
  // Its own cache, so that this command scans. Under AddressSanitizer (tools/dev.sh
  // sanitize) ASan's own SIGSEGV handler would report the deliberate crash and abort
  // (signal 6); handle_segv=0 lets the scanner die of the SIGSEGV as it does in a normal
  // build, and every other ASan check stays on (other builds ignore the variable).
  const std::string env = "OOD_HOME='" + (dir / "home").string() +
                          "' OOD_PLUGIN_SCAN_TIMEOUT=2 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:"
                          "halt_on_error=1:handle_segv=0";
  auto r = ood_in(dir, "--plugin-path " + unsafe.string() + " plugins", env);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "plugin '" + (unsafe / "ood-crash-on-load.so").string() +
                                     "': refused: it crashed the plugin scanner with signal 11 (SIGSEGV"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "plugin '" + (unsafe / "ood-hang-on-load.so").string() +
                                     "': refused: timed out: no answer from the plugin scanner within 2 s"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "energy-based")) << r.output;
  EXPECT_TRUE(contains(r.output, "(2 refused")) << r.output;
  // The verdicts are cached (path, size, mtime): the next command does not rescan.
  ASSERT_TRUE(fs::exists(dir / "home" / "plugin-registry.json"));
  const json cache = metrics_of(dir / "home" / "plugin-registry.json");
  EXPECT_EQ(cache["files"][(unsafe / "ood-crash-on-load.so").string()]["status"], "refused");
  // A timeout is not cached: on a loaded machine a healthy plugin may answer late.
  EXPECT_FALSE(cache["files"].contains((unsafe / "ood-hang-on-load.so").string())) << cache.dump();
  const double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(first, 2.0);  // it waited for the hanging plugin
  r = ood_in(dir, "--plugin-path " + unsafe.string() + " validate p.json", env);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "SIGSEGV")) << r.output;    // from the cache
  EXPECT_TRUE(contains(r.output, "timed out")) << r.output;  // scanned again
}

}  // namespace
}  // namespace ood::test
