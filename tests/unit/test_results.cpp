// Result files: metrics.json layout, the Markdown table, scores.csv precision, and
// atomic writing.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>
#include <sstream>

#include "ood/core/results.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

EvaluationResult sample_result() {
  EvaluationResult r;
  r.detectors = {"msp", "energy"};
  r.in = {"in", false, at::tensor({0, 1}, at::kLong), at::tensor({0, 1}, at::kLong),
          {at::tensor({-0.123456789f, -0.5f}), at::tensor({-1.0 / 3.0, 2e-300}, at::kDouble)}};
  r.out.push_back({"noise", true, at::tensor({-1}, at::kLong), at::tensor({5}, at::kLong),
                   {at::tensor({0.1f}), at::tensor({1e10}, at::kDouble)}});
  r.out.push_back({"far", true, at::tensor({-1}, at::kLong), at::tensor({0}, at::kLong),
                   {at::tensor({0.2f}), at::tensor({3.0}, at::kDouble)}});
  r.metrics = {{{0.9, 0.8, 0.7, 0.1}, {0.5, 0.5, 0.5, 1.0}}, {{1.0, 1.0, 1.0, 0.0}, {0.25, 0.5, 0.75, 0.5}}};
  return r;
}

TEST(Results, MetricsJsonLayout) {
  const auto j = metrics_json(sample_result(), {{"seed", 3}});
  EXPECT_EQ(j["noise"]["msp"]["AUROC"], 0.9);
  EXPECT_EQ(j["noise"]["msp"]["AUPR-IN"], 0.8);
  EXPECT_EQ(j["noise"]["msp"]["AUPR-OUT"], 0.7);
  EXPECT_EQ(j["noise"]["msp"]["FPR95TPR"], 0.1);
  EXPECT_EQ(j["far"]["energy"]["AUPR-OUT"], 0.75);
  EXPECT_EQ(j["_meta"]["seed"], 3);
  EXPECT_EQ(j.begin().key(), "noise");  // pipeline order
}

TEST(Results, MarkdownTableInPercentWithMeans) {
  const std::string md = metrics_markdown(sample_result());
  EXPECT_NE(md.find("| Detector | OOD set | AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |"), std::string::npos);
  EXPECT_NE(md.find("| msp | noise | 90.00 | 80.00 | 70.00 | 10.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| msp | *mean* | 95.00 | 90.00 | 85.00 | 5.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| energy | far | 25.00 | 50.00 | 75.00 | 50.00 |"), std::string::npos) << md;
}

TEST(Results, ScoresCsvRoundTripsEveryValue) {
  const EvaluationResult r = sample_result();
  std::istringstream csv(scores_csv(r));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "dataset,index,label,msp,energy");
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("in,0,0,", 0), 0u) << line;
  // Parse the two score columns back: float32 and float64 values survive exactly.
  const auto comma = line.find(',', 7);
  EXPECT_EQ(std::stof(line.substr(7, comma - 7)), -0.123456789f);
  EXPECT_EQ(std::stod(line.substr(comma + 1)), -1.0 / 3.0);
  std::getline(csv, line);
  EXPECT_EQ(std::stod(line.substr(line.rfind(',') + 1)), 2e-300);
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("noise,5,-1,", 0), 0u) << line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("far,0,-1,", 0), 0u) << line;
}

TEST(Results, AtomicWrites) {
  const auto dir = test::temp_dir("atomic");
  write_file_atomically(dir / "sub" / "a.txt", "hello");
  EXPECT_EQ(test::read_text(dir / "sub" / "a.txt"), "hello");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub")) files += e.is_regular_file();
  EXPECT_EQ(files, 1);  // no temporary left behind
  std::filesystem::create_directories(dir / "blocked");
  EXPECT_THROW(write_file_atomically(dir / "blocked", "x"), FileError);  // a directory is in the way
  std::ofstream(dir / "plainfile") << "x";
  EXPECT_THROW(write_file_atomically(dir / "plainfile" / "child.txt", "x"), FileError);
}

}  // namespace
}  // namespace ood::core
