// `ood run` and `ood demo` end to end through the binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "cli_support.hpp"
#include "ood/core/metrics.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The pipeline of the issue, verbatim: paths relative to the working directory.
const char* kIssuePipeline = R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": 16,
           "widen_factor": 2, "weights": "ref/wrn_state.pt"}},
 "data": {"in":  {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_in",  "labels": "y_in"}},
          "out": {"noise": {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_out", "labels": "y_out"}}}},
 "detectors": {"msp": {"plugin": "max-softmax"}, "energy": {"plugin": "energy-based"}},
 "evaluate": {"batch_size": 32, "save_scores": true}})";

fs::path issue_workdir(const std::string& name) {
  const fs::path dir = temp_dir(name);
  fs::create_directories(dir / "ref");
  fs::copy_file(fixture("reference/model/wrn_state.pt"), dir / "ref" / "wrn_state.pt");
  fs::copy_file(fixture("reference/data/data.pt"), dir / "ref" / "data.pt");
  std::ofstream(dir / "that.json") << kIssuePipeline;
  return dir;
}

struct Csv {
  std::vector<std::string> header;
  std::map<std::string, std::vector<std::vector<std::string>>> rows;  // by dataset
};

Csv read_csv(const fs::path& file) {
  Csv csv;
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  for (std::stringstream ss(line); std::getline(ss, line, ',');) csv.header.push_back(line);
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    for (std::stringstream ss(line); std::getline(ss, line, ',');) cells.push_back(line);
    csv.rows[cells.at(0)].push_back(cells);
  }
  return csv;
}

at::Tensor column(const Csv& csv, const std::string& dataset, std::size_t col) {
  std::vector<float> v;
  for (const auto& row : csv.rows.at(dataset)) v.push_back(std::stof(row.at(col)));
  return at::tensor(v);
}

TEST(Run, IssuePipelineMatchesPytorchOod) {
  const fs::path dir = issue_workdir("run_issue");
  auto r = ood("run that.json --out res -q --threads 1", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "| msp | noise |")) << r.output;

  const Csv csv = read_csv(dir / "res" / "scores.csv");
  ASSERT_EQ(csv.header, (std::vector<std::string>{"dataset", "index", "label", "msp", "energy"}));
  ASSERT_EQ(csv.rows.at("in").size(), 64u);
  ASSERT_EQ(csv.rows.at("noise").size(), 64u);
  const auto msp = load_tensor_dict_file("reference/detectors/maxsoftmax.pt");
  const auto energy = load_tensor_dict_file("reference/detectors/energy.pt");
  for (const std::string side : {"in", "out"}) {
    const std::string set = side == "in" ? "in" : "noise";
    // Scores that run the network: rtol 1e-4, atol 1e-4 (reference README).
    EXPECT_TRUE(all_close(column(csv, set, 3), tensor_of(msp, "scores_t1_" + side), 1e-4, 1e-4)) << side;
    EXPECT_TRUE(all_close(column(csv, set, 4), tensor_of(energy, "scores_t1_" + side), 1e-4, 1e-4)) << side;
  }
  EXPECT_EQ(csv.rows.at("noise")[5][2], "-1");
  EXPECT_EQ(csv.rows.at("in")[5][1], "5");

  // metrics.json holds OODMetrics of those scores, and of pytorch-ood's own scores.
  std::ifstream in(dir / "res" / "metrics.json");
  const json metrics = json::parse(in);
  for (const auto& [name, col, fx] : {std::tuple{std::string("msp"), 3, &msp}, std::tuple{std::string("energy"), 4, &energy}}) {
    const at::Tensor scores = at::cat({column(csv, "in", col), column(csv, "noise", col)});
    const at::Tensor labels = at::cat({at::zeros({64}, at::kLong), at::full({64}, -1, at::kLong)});
    const OODMetricValues ours = compute_ood_metrics(scores, labels);
    const OODMetricValues theirs = compute_ood_metrics(
        at::cat({tensor_of(*fx, "scores_t1_in"), tensor_of(*fx, "scores_t1_out")}), labels);
    const json& m = metrics["noise"][name];
    EXPECT_NEAR(m["AUROC"].get<double>(), ours.auroc, 1e-12) << name;
    EXPECT_NEAR(m["AUPR-IN"].get<double>(), ours.aupr_in, 1e-12) << name;
    EXPECT_NEAR(m["AUPR-OUT"].get<double>(), ours.aupr_out, 1e-12) << name;
    EXPECT_NEAR(m["FPR95TPR"].get<double>(), ours.fpr95tpr, 1e-12) << name;
    EXPECT_NEAR(m["AUROC"].get<double>(), theirs.auroc, 1e-6) << name;
    EXPECT_NEAR(m["AUPR-IN"].get<double>(), theirs.aupr_in, 1e-6) << name;
    EXPECT_NEAR(m["AUPR-OUT"].get<double>(), theirs.aupr_out, 1e-6) << name;
    EXPECT_NEAR(m["FPR95TPR"].get<double>(), theirs.fpr95tpr, 1e-6) << name;
  }
  EXPECT_EQ(metrics["_meta"]["samples"]["in"], 64);
  const double waited = metrics["_meta"]["seconds_score_waiting_for_data"].get<double>();
  EXPECT_GE(waited, 0.0);
  EXPECT_LE(waited, metrics["_meta"]["seconds_score"].get<double>());
  EXPECT_TRUE(fs::exists(dir / "res" / "metrics.md"));
}

TEST(Run, OverridesAndDefaultOutputDirectory) {
  const fs::path dir = issue_workdir("run_override");
  auto r = ood("run that.json -q --threads 1 --set evaluate.save_scores=false --set detectors.msp.params.t=2.0", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "that-results" / "metrics.json"));
  EXPECT_FALSE(fs::exists(dir / "that-results" / "scores.csv"));
}

TEST(Run, RuntimeFailuresExitOneAndWriteNothing) {
  const fs::path dir = issue_workdir("run_fail");
  fs::remove(dir / "ref" / "wrn_state.pt");
  auto r = ood("run that.json --out res -q --threads 1", dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "ref/wrn_state.pt")) << r.output;
  EXPECT_TRUE(contains(r.output, "/model")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "res"));

  // A corrupt data file.
  const fs::path dir2 = issue_workdir("run_corrupt");
  std::ofstream(dir2 / "ref" / "data.pt", std::ios::trunc) << "not a torch file";
  r = ood("run that.json --out res -q --threads 1", dir2);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "/data/in: dataset 'tensor-file'")) << r.output;
  EXPECT_TRUE(contains(r.output, "ref/data.pt")) << r.output;
  EXPECT_FALSE(fs::exists(dir2 / "res" / "metrics.json"));

  // Weights for another network: a pipeline mistake, exit 2.
  const fs::path dir3 = issue_workdir("run_mismatch");
  r = ood("run that.json --out res -q --threads 1 --set model.params.num_classes=7", dir3);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/model/params/weights")) << r.output;
  EXPECT_TRUE(contains(r.output, "fc.weight")) << r.output;
}

TEST(Demo, TinyBudgetRunsAndIsDeterministic) {
  const fs::path dir = temp_dir("demo");
  const std::string budget =
      "-q --threads 1 --set train.epochs=1 --set train.max_batches=3 --set evaluate.max_samples=256 "
      "--set data.out.gaussian-noise.params.size=256 --set data.out.uniform-noise.params.size=256";
  auto r = ood("demo --out a " + budget, dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* det : {"| msp |", "| energy |", "| max-logit |", "| entropy |"})
    EXPECT_TRUE(contains(r.output, det)) << r.output;
  std::ifstream in(dir / "a" / "metrics.json");
  const json metrics = json::parse(in);
  for (const char* set : {"fmnist-6-9", "gaussian-noise", "uniform-noise"}) {
    ASSERT_TRUE(metrics.contains(set)) << set;
    EXPECT_EQ(metrics[set].size(), 4u);
    for (const auto& [det, m] : metrics[set].items()) {
      EXPECT_GE(m["AUROC"].get<double>(), 0.0);
      EXPECT_LE(m["AUROC"].get<double>(), 1.0);
    }
  }
  EXPECT_EQ(metrics["_meta"]["train"]["steps"], 3);
  // The checkpoint is a state dict PyTorch (and ood) can load.
  const TensorDict state = io::load_state_dict(dir / "a" / "model.pt");
  EXPECT_TRUE(state.contains("block1.layer.0.conv1.weight"));
  EXPECT_TRUE(state.contains("fc.bias"));
  EXPECT_EQ(state.at("fc.weight").size(0), 6);

  // Same seed, same table.
  r = ood("demo --out b " + budget, dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string table = read_text(dir / "a" / "metrics.md");
  ASSERT_FALSE(table.empty());
  EXPECT_EQ(table, read_text(dir / "b" / "metrics.md"));
}

TEST(Demo, PrintsItsPipeline) {
  auto r = ood("demo --print-pipeline");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json p = json::parse(r.output);
  EXPECT_EQ(p["model"]["plugin"], "wide-resnet");
  EXPECT_EQ(p["train"]["data"]["params"]["classes"], json::parse("[0,1,2,3,4,5]"));
}

}  // namespace
}  // namespace ood::test

namespace ood::test {
namespace {

// `ood run` with networks of other depths, widths and input channel counts
// (tests/fixtures/wide_resnet, made by pytorch-ood's WideResNet definition).
TEST(Run, OtherNetworkShapesGiveTheirPytorchLogits) {
  for (const std::string name : {"d22_w1_c1", "d10_w3_c2"}) {
    const fs::path dir = temp_dir("run_" + name);
    fs::copy_file(fixture("wide_resnet/" + name + "_state.pt"), dir / "state.pt");
    fs::copy_file(fixture("wide_resnet/" + name + "_data.pt"), dir / "data.pt");
    const auto data = load_tensor_dict_file("wide_resnet/" + name + "_data.pt");
    auto scalar = [&](const char* k) { return std::to_string(tensor_of(data, k).item<std::int64_t>()); };
    const std::string classes = scalar("num_classes") == "4" ? "[0, 1, 2, 3]" : "[0, 1, 2]";
    const std::string base = R"({"plugin": "tensor-file", "params": {"path": "data.pt", "inputs": "x", "labels": "y"}})";
    std::ofstream(dir / "p.json") << R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": )" +
                                         scalar("num_classes") + R"(, "depth": )" + scalar("depth") +
                                         R"(, "widen_factor": )" + scalar("widen_factor") + R"(, "in_channels": )" +
                                         scalar("in_channels") + R"(, "weights": "state.pt"}},
      "data": {"in": {"plugin": "class-filter", "params": {"dataset": )" + base + R"(, "classes": )" + classes + R"(}},
               "out": {"rest": {"plugin": "class-filter", "params": {"dataset": )" + base + R"(, "classes": [-1]}}}},
      "detectors": {"energy": {"plugin": "energy-based"}, "max-logit": {"plugin": "max-logit"}},
      "evaluate": {"batch_size": 5, "save_scores": true}})";
    auto r = ood("run p.json --out res -q --threads 1", dir);
    ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.output;
    const Csv csv = read_csv(dir / "res" / "scores.csv");
    const at::Tensor logits = tensor_of(data, "logits");
    const std::int64_t half = logits.size(0) / 2;
    const at::Tensor scores = at::cat({column(csv, "in", 3), column(csv, "rest", 3)});
    EXPECT_TRUE(all_close(scores, -at::logsumexp(logits, 1), 1e-4, 1e-4)) << name;
    const at::Tensor max_logit = at::cat({column(csv, "in", 4), column(csv, "rest", 4)});
    EXPECT_TRUE(all_close(max_logit, -std::get<0>(logits.max(1)), 1e-4, 1e-4)) << name;
    EXPECT_EQ(static_cast<std::int64_t>(csv.rows.at("in").size()), half);
  }
}

}  // namespace
}  // namespace ood::test
