// Hostile but fair use of the command line (issue 11): one clear message, the right
// exit code, and an output folder that holds a whole result set or none.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "cli_support.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kPipeline = R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": 16,
           "widen_factor": 2, "weights": "ref/wrn_state.pt"}},
 "data": {"in":  {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_in",  "labels": "y_in"}},
          "out": {"noise": {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_out", "labels": "y_out"}}}},
 "detectors": {"msp": {"plugin": "max-softmax"}, "energy": {"plugin": "energy-based"}},
 "evaluate": {"batch_size": 32, "save_scores": true}})";

fs::path workdir(const std::string& name) {
  const fs::path dir = temp_dir(name);
  fs::create_directories(dir / "ref");
  fs::copy_file(fixture("reference/model/wrn_state.pt"), dir / "ref" / "wrn_state.pt");
  fs::copy_file(fixture("reference/data/data.pt"), dir / "ref" / "data.pt");
  std::ofstream(dir / "p.json") << kPipeline;
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Hardening, NullModelExitsTwoWithoutRunning) {
  const fs::path dir = workdir("h-null");
  auto r = ood("validate p.json --set model=null", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "detectors need a model")) << r.output;
  r = ood("run p.json -q --threads 1 --set /data/in=null", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "detectors need in-distribution data")) << r.output;
}

TEST(Hardening, ThreadsHaveAnUpperBound) {
  auto r = ood("plugins --threads 100000");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--threads 100000: at most")) << r.output;
  r = ood("plugins --threads 1025");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(ood("plugins --threads 1").exit_code, 0);
}

TEST(Hardening, OutputIsCheckedBeforeAnyWork) {
  const fs::path dir = workdir("h-out");
  auto r = ood("run p.json -q --threads 1 --out ''", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "the output folder name is empty")) << r.output;
  std::ofstream(dir / "afile") << "x";
  // Training first: the check must come before it (the run would take long otherwise).
  r = ood("run p.json -q --threads 1 --out afile --set 'train={\"data\": {\"plugin\": \"uniform-noise\", "
          "\"params\": {\"size\": 100000, \"shape\": [3, 32, 32]}}}'",
          dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "afile: the output folder is a file, not a folder")) << r.output;
  EXPECT_FALSE(contains(r.output, "epoch")) << r.output;
  r = ood("run p.json -q --threads 1 --out .", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot be the working directory")) << r.output;
}

TEST(Hardening, ResultSetIsReplacedAsOneAndNoStagingIsLeft) {
  const fs::path dir = workdir("h-swap");
  auto r = ood("run p.json -q --threads 1 --out res", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(entries(dir / "res"), (std::vector<std::string>{"metrics.json", "metrics.md", "scores.csv"}));
  r = ood("run p.json -q --threads 1 --out res --set evaluate.save_scores=false", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The second set has no scores.csv: the first one's does not stay beside it.
  EXPECT_EQ(entries(dir / "res"), (std::vector<std::string>{"metrics.json", "metrics.md"}));
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"p.json", "ref", "res"}));
}

TEST(Hardening, TwoRunsIntoOneFolderGiveOneWholeSet) {
  const fs::path dir = workdir("h-two");
  auto r = run_command("cd '" + dir.string() + "' && ('" + ood_binary() +
                       "' run p.json -q --threads 1 --out res & '" + ood_binary() +
                       "' run p.json -q --threads 1 --out res --set evaluate.save_scores=false "
                       "--set detectors.msp.params.t=3 & wait)");
  const auto files = entries(dir / "res");
  // Either run's set, whole: with scores.csv the first one's metrics, else the second's.
  const json metrics = json::parse(read_text(dir / "res" / "metrics.json"));
  const double t = metrics["_meta"]["pipeline_normalized"]["detectors"]["msp"]["params"]["t"];
  if (t == 3.0)
    EXPECT_EQ(files, (std::vector<std::string>{"metrics.json", "metrics.md"}));
  else
    EXPECT_EQ(files, (std::vector<std::string>{"metrics.json", "metrics.md", "scores.csv"}));
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"p.json", "ref", "res"}));
}

TEST(Hardening, SigtermLeavesNoStagingFolder) {
  const fs::path dir = workdir("h-sigterm");
  // A long evaluation, stopped after four seconds (while scoring).
  auto r = run_command("cd '" + dir.string() + "' && timeout -s TERM 4 '" + ood_binary() +
                       "' run p.json -q --threads 1 --out res --set 'data.out.big={\"plugin\": \"uniform-noise\", "
                       "\"params\": {\"size\": 200000, \"shape\": [3, 32, 32]}}'");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"p.json", "ref"})) << r.output;
}

TEST(Hardening, NonUtf8PipelineNameDoesNotFailHalfway) {
  const fs::path dir = workdir("h-utf8");
  fs::rename(dir / "p.json", dir / "p\xff.json");
  auto r = ood("run \"$(printf 'p\\377.json')\" -q --threads 1 --out res", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(read_text(dir / "res" / "metrics.json"), "p\xef\xbf\xbd.json"));  // U+FFFD
}

TEST(Hardening, PipelineFileErrorsSayWhy) {
  const fs::path dir = workdir("h-file");
  fs::create_directories(dir / "d.json");
  auto r = ood("validate d.json", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "d.json: is a directory")) << r.output;
  ASSERT_EQ(::mkfifo((dir / "f.json").c_str(), 0600), 0);
  r = ood("validate f.json", dir);  // and does not block on the FIFO
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "f.json: not a regular file")) << r.output;
}

TEST(Hardening, JsonMistakesExitTwoWithLocation) {
  const fs::path dir = workdir("h-json");
  std::ofstream(dir / "big.json") << "{\"seed\":\n 1e999}";
  auto r = ood("validate big.json", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "big.json:2:2: not valid JSON: the number 1e999 is out of range")) << r.output;
  std::string dup = kPipeline;
  dup.replace(dup.find("\"energy\""), 8, "\"msp\"");
  std::ofstream(dir / "dup.json") << dup;
  r = ood("validate dup.json", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors/msp: duplicate key")) << r.output;
  r = ood("validate p.json --set 'detectors={}'", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/detectors: no detector: name at least one")) << r.output;
}

TEST(Hardening, FakePluginGetsAClearMessage) {
  const fs::path dir = temp_dir("h-fake-plugin");
  std::ofstream(dir / "ood-x.so") << "this is not a library\n";
  auto r = ood("plugins --plugin-path '" + dir.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "ood-x.so': refused: not a readable shared library (no ELF header")) << r.output;
  EXPECT_FALSE(contains(r.output, "basic_ios")) << r.output;
}

TEST(Hardening, NanInWeightsOrDataIsBlamedOnItsSource) {
  const fs::path dir = workdir("h-nan");
  TensorDict weights = io::load_state_dict(dir / "ref" / "wrn_state.pt");
  TensorDict bad;
  for (const auto& [key, tensor] : weights) {
    at::Tensor t = tensor.clone();
    if (key == "fc.weight") t[0][0] = std::nan("");
    bad.set(key, t);
  }
  io::save_tensor_dict(dir / "ref" / "nan_state.pt", bad);
  auto r = ood("run p.json -q --threads 1 --out res --set model.params.weights=ref/nan_state.pt", dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/model: the weights contain NaN (tensor 'fc.weight')")) << r.output;

  const auto data = io::load_torch_file(dir / "ref" / "data.pt").toGenericDict();
  TensorDict nan_data;
  for (const char* key : {"x_in", "y_in", "x_out", "y_out"}) {
    at::Tensor t = data.at(key).toTensor().clone();
    if (std::string(key) == "x_in") t[5][0][0][0] = std::nan("");
    nan_data.set(key, t);
  }
  io::save_tensor_dict(dir / "ref" / "nan_data.pt", nan_data);
  r = ood("run p.json -q --threads 1 --out res --set data.in.params.path=ref/nan_data.pt "
          "--set data.out.noise.params.path=ref/nan_data.pt",
          dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/data/in: sample 5: the input contains NaN")) << r.output;
  EXPECT_FALSE(contains(r.output, "/data/out")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "res"));
}

TEST(Hardening, NoLibTorchBacktraceReachesTheTerminal) {
  const fs::path dir = workdir("h-backtrace");
  // One input channel for a three-channel network: the convolution fails inside LibTorch.
  const auto data = io::load_torch_file(dir / "ref" / "data.pt").toGenericDict();
  TensorDict odd;
  odd.set("x", data.at("x_in").toTensor().narrow(1, 0, 1).contiguous());
  odd.set("y", data.at("y_in").toTensor());
  io::save_tensor_dict(dir / "ref" / "odd.pt", odd);
  auto r = ood("run p.json -q --threads 1 --out res --set data.in.params.path=ref/odd.pt "
               "--set data.in.params.inputs=x --set data.in.params.labels=y",
               dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_FALSE(contains(r.output, "Exception raised from")) << r.output;
  EXPECT_FALSE(contains(r.output, "frame #")) << r.output;
}

}  // namespace
}  // namespace ood::test
