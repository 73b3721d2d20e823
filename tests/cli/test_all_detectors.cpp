// Every detector in one `ood run` on the reference model: fitted once on /data/fit,
// one shared forward per batch for those that can share it, states saved; a second run
// restores every state with `load_state`, needs no fit data and gives the same scores.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// name -> (plugin, params, fits)
struct Entry {
  const char* name;
  const char* plugin;
  const char* params;
  bool fits;
};
const Entry kDetectors[] = {
    {"msp", "max-softmax", "{}", false},
    {"energy", "energy-based", "{}", false},
    {"max-logit", "max-logit", "{}", false},
    {"entropy", "entropy", "{}", false},
    {"odin", "odin", R"({"eps": 0.002, "temperature": 1000})", false},
    {"mahalanobis", "mahalanobis", R"({"eps": 0.0})", true},
    {"multi-mahalanobis", "multi-mahalanobis",
     R"({"layers": ["conv1", "block1", "block2", "before_pool"], "alpha": [1.0, 0.5, 2.0, 1.0]})", true},
    {"rmd", "rmd", "{}", true},
    {"kl-matching", "kl-matching", "{}", true},
    {"knn", "knn", R"({"k": 1, "normalize": false})", true},
    {"vim", "vim", R"({"d": 40})", true},
    {"dice", "dice", R"({"p": 90})", true},
    {"she", "she", "{}", true},
    {"react", "react", R"({"threshold": 1.0})", false},
    {"ash", "ash", R"({"variant": "ash-p", "percentile": 0.65})", false},
    {"weighted-ebo", "weighted-ebo", R"({"weights": "ref/webo.pt"})", false},
    {"temperature-scaling", "temperature-scaling", "{}", true},
    {"openmax", "openmax", R"({"tailsize": 10, "alpha": 4, "euclid_weight": 1.0})", true},
    {"mcd", "mcd", R"({"samples": 4, "mode": "mean"})", false},
};

json tensor_set(const char* x, const char* y) {
  return {{"plugin", "tensor-file"}, {"params", {{"path", "ref/data.pt"}, {"inputs", x}, {"labels", y}}}};
}

json pipeline(bool restore) {
  json detectors = json::object();
  for (const Entry& e : kDetectors) {
    json d = {{"plugin", e.plugin}, {"params", json::parse(e.params)}};
    if (e.fits) {
      if (restore) d["load_state"] = std::string("states/") + e.name + ".pt";
      else {
        d["fit"] = "fit";
        d["save_state"] = std::string("states/") + e.name + ".pt";
      }
    }
    detectors[e.name] = d;
  }
  json data = {{"in", tensor_set("x_in", "y_in")}, {"out", {{"noise", tensor_set("x_out", "y_out")}}}};
  if (!restore) data["fit"] = tensor_set("x_fit", "y_fit");
  return {{"seed", 3},
          {"model",
           {{"plugin", "wide-resnet"},
            {"params", {{"num_classes", 10}, {"depth", 16}, {"widen_factor", 2}, {"weights", "ref/wrn_state.pt"}}}}},
          {"data", data},
          {"detectors", detectors},
          {"evaluate", {{"batch_size", 32}, {"save_scores", true}}}};
}

fs::path workdir() {
  const fs::path dir = temp_dir("all_detectors");
  fs::create_directories(dir / "ref");
  fs::copy_file(fixture("reference/model/wrn_state.pt"), dir / "ref" / "wrn_state.pt");
  fs::copy_file(fixture("reference/data/data.pt"), dir / "ref" / "data.pt");
  // weighted-ebo's weights: the fixture's nn.Linear(C, 1).
  const auto webo = load_tensor_dict_file("reference/detectors/weighted_ebo.pt");
  TensorDict w;
  w.set("weight", tensor_of(webo, "weights_weight"));
  w.set("bias", tensor_of(webo, "weights_bias"));
  io::save_tensor_dict(dir / "ref" / "webo.pt", w);
  std::ofstream(dir / "fit.json") << pipeline(false).dump(2);
  std::ofstream(dir / "restore.json") << pipeline(true).dump(2);
  return dir;
}

TEST(AllDetectors, OneRunFitsSavesAndScoresEveryDetectorAndStatesRestore) {
  const fs::path dir = workdir();
  auto fitted = ood("run fit.json --out fitted -q --threads 1", dir);
  ASSERT_EQ(fitted.exit_code, 0) << fitted.output;
  auto restored = ood("run restore.json --out restored -q --threads 1", dir);
  ASSERT_EQ(restored.exit_code, 0) << restored.output;

  const std::string a = read_text(dir / "fitted" / "scores.csv");
  const std::string b = read_text(dir / "restored" / "scores.csv");
  std::string header_a = a.substr(0, a.find('\n'));
  std::set<std::string> columns;
  for (std::stringstream ss(header_a); std::getline(ss, header_a, ',');) columns.insert(header_a);
  for (const Entry& e : kDetectors) EXPECT_TRUE(columns.count(e.name)) << e.name;
  EXPECT_EQ(columns.size(), std::size(kDetectors) + 3);  // dataset,index,label

  // Every column but MCD's (a fresh seeded stream per run, but drawn per batch in the
  // same order: also equal) is a deterministic function of the state: equal text.
  EXPECT_EQ(a, b);
  const json metrics = json::parse(read_text(dir / "fitted" / "metrics.json"));
  for (const Entry& e : kDetectors) {
    ASSERT_TRUE(metrics["noise"].contains(e.name)) << e.name;
    const double auroc = metrics["noise"][e.name]["AUROC"].get<double>();
    EXPECT_TRUE(auroc >= 0.0 && auroc <= 1.0) << e.name << " " << auroc;
  }
}

}  // namespace
}  // namespace ood::test
