// Tests of ood::OODMetrics against the pytorch-ood fixture (tests/fixtures/reference/
// metrics/ood_metrics.{json,pt}) and against a brute-force float64 reference written
// here from the definitions (pairwise AUROC, one curve point per distinct threshold).
//
// Parity rule (tests/fixtures/reference/POLICY.md): every classification case equals
// the fixture's `sklearn_float64_on_raw_scores` within 1e-6; pytorch-ood's own value is
// matched where it agrees with scikit-learn, and NOT matched where it carries the
// float32-sigmoid artefact.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ood/core/metrics.hpp"
#include "ood/error.hpp"

namespace {

using ood::OODMetrics;
using ood::OODMetricValues;
using json = nlohmann::json;

constexpr double kFixtureTol = 1e-6;
const char* const kNames[] = {"AUROC", "AUPR-IN", "AUPR-OUT", "FPR95TPR"};

// ---------------------------------------------------------------------------------
// Fixture access.

std::filesystem::path fixtures_dir() {
  const char* dir = std::getenv("OOD_FIXTURES_DIR");
  if (dir == nullptr || *dir == '\0') {
    throw std::runtime_error("OOD_FIXTURES_DIR is not set: point it at the repository's tests/fixtures directory");
  }
  return dir;
}

std::filesystem::path metrics_file(const char* ext) {
  return fixtures_dir() / "reference" / "metrics" / (std::string("ood_metrics.") + ext);
}

const json& meta() {
  static const json j = [] {
    std::ifstream f(metrics_file("json"));
    if (!f) throw std::runtime_error("cannot open " + metrics_file("json").string());
    return json::parse(f);
  }();
  return j;
}

const c10::Dict<c10::IValue, c10::IValue>& tensors() {
  static const c10::Dict<c10::IValue, c10::IValue> d = [] {
    std::ifstream f(metrics_file("pt"), std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + metrics_file("pt").string());
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return torch::jit::pickle_load(bytes).toGenericDict();
  }();
  return d;
}

at::Tensor fixture_tensor(const std::string& name) {
  const auto& d = tensors();
  const auto it = d.find(name);
  if (it == d.end()) throw std::runtime_error("fixture tensor '" + name + "' is missing from ood_metrics.pt");
  return it->value().toTensor();
}

double fixture_value(const std::string& name) { return fixture_tensor(name).item<double>(); }

const json& case_json(const std::string& key) {
  for (const json& c : meta().at("cases")) {
    if (c.at("key") == key) return c;
  }
  throw std::runtime_error("no case '" + key + "' in ood_metrics.json");
}

// Read at test registration; empty (and reported by FixtureIsComplete) when the
// fixtures cannot be found.
std::vector<std::string> case_keys() {
  std::vector<std::string> keys;
  try {
    for (const json& c : meta().at("cases")) keys.push_back(c.at("key").get<std::string>());
  } catch (const std::exception&) {
    keys.clear();
  }
  return keys;
}

double get(const OODMetricValues& v, const std::string& name) {
  for (const auto& [n, x] : ood::as_named(v)) {
    if (n == name) return x;
  }
  throw std::runtime_error("unknown metric " + name);
}

// ---------------------------------------------------------------------------------
// Brute-force reference, float64, straight from the definitions: O(n^2) pairwise
// AUROC, and curves rebuilt by counting at every distinct threshold (O(n * m)).

struct Reference {
  double auroc_pairs, auroc_trapezoid, aupr_in, aupr_out, fpr95tpr;
};

double trapezoid(const std::vector<std::pair<double, double>>& pts) {
  double area = 0.0;
  for (std::size_t k = 1; k < pts.size(); ++k) {
    area += std::abs(pts[k].first - pts[k - 1].first) * (pts[k].second + pts[k - 1].second) / 2.0;
  }
  return area;
}

Reference brute_force(const std::vector<double>& s, const std::vector<int64_t>& labels) {
  double P = 0, N = 0;
  for (int64_t l : labels) (l < 0 ? P : N) += 1;
  double wins = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (labels[i] >= 0) continue;
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (labels[j] < 0) continue;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  std::vector<double> thr = s;
  std::sort(thr.begin(), thr.end());
  thr.erase(std::unique(thr.begin(), thr.end()), thr.end());  // == merges -0.0 and 0.0

  std::vector<std::pair<double, double>> roc{{0.0, 0.0}}, pr_out{{0.0, 1.0}}, pr_in{{0.0, 1.0}};
  double fpr95 = -1;
  for (auto t = thr.rbegin(); t != thr.rend(); ++t) {  // descending: OOD positive
    double tp = 0, fp = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] >= *t) (labels[i] < 0 ? tp : fp) += 1;
    }
    roc.emplace_back(fp / N, tp / P);
    pr_out.emplace_back(tp / P, tp / (tp + fp));
    if (fpr95 < 0 && tp / P >= 0.95) fpr95 = fp / N;
  }
  for (double t : thr) {  // ascending = descending on -scores: IN positive
    double tp = 0, fp = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] <= t) (labels[i] >= 0 ? tp : fp) += 1;
    }
    pr_in.emplace_back(tp / N, tp / (tp + fp));
  }
  return {wins / (P * N), trapezoid(roc), trapezoid(pr_in), trapezoid(pr_out), fpr95};
}

Reference brute_force(const at::Tensor& scores, const at::Tensor& labels) {
  const at::Tensor s = scores.to(at::kDouble).contiguous().flatten();
  const at::Tensor l = labels.to(at::kLong).contiguous().flatten();
  return brute_force(std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel()),
                     std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel()));
}

// The same definitions for large n, built the way scikit-learn does: sort once, keep the
// cumulative counts at the last sample of each distinct score, then trapezoids over the
// curve arrays. AUROC also from the Mann-Whitney statistic with mid-ranks.
Reference sorted_curve_reference(const std::vector<double>& s, const std::vector<int64_t>& labels) {
  const std::size_t n = s.size();
  std::vector<std::size_t> idx(n);
  for (std::size_t k = 0; k < n; ++k) idx[k] = k;
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
  std::vector<double> tps, fps;
  double tp = 0, fp = 0;
  for (std::size_t k = 0; k < n; ++k) {
    (labels[idx[k]] < 0 ? tp : fp) += 1;
    if (k + 1 == n || s[idx[k + 1]] != s[idx[k]]) {
      tps.push_back(tp);
      fps.push_back(fp);
    }
  }
  const double P = tp, N = fp;
  std::vector<std::pair<double, double>> roc{{0.0, 0.0}}, pr_out{{0.0, 1.0}}, pr_in{{0.0, 1.0}};
  double fpr95 = -1;
  for (std::size_t g = 0; g < tps.size(); ++g) {
    roc.emplace_back(fps[g] / N, tps[g] / P);
    pr_out.emplace_back(tps[g] / P, tps[g] / (tps[g] + fps[g]));
    if (fpr95 < 0 && tps[g] / P >= 0.95) fpr95 = fps[g] / N;
  }
  // IN positive on -scores: the groups in ascending order, counting from the bottom.
  for (std::size_t g = tps.size(); g-- > 0;) {
    const double in_at_or_below = N - (g == 0 ? 0.0 : fps[g - 1]);
    const double ood_at_or_below = P - (g == 0 ? 0.0 : tps[g - 1]);
    pr_in.emplace_back(in_at_or_below / N, in_at_or_below / (in_at_or_below + ood_at_or_below));
  }
  // Mid-ranks, ascending.
  double rank_sum_ood = 0;
  for (std::size_t k = 0; k < n;) {
    std::size_t e = k;
    while (e + 1 < n && s[idx[e + 1]] == s[idx[k]]) ++e;
    // Positions k..e in descending order are ascending ranks n-e .. n-k (1-based).
    const double mid_rank = (static_cast<double>(n - e) + static_cast<double>(n - k)) / 2.0;
    for (std::size_t q = k; q <= e; ++q) {
      if (labels[idx[q]] < 0) rank_sum_ood += mid_rank;
    }
    k = e + 1;
  }
  const double mann_whitney = (rank_sum_ood - P * (P + 1) / 2) / (P * N);
  return {mann_whitney, trapezoid(roc), trapezoid(pr_in), trapezoid(pr_out), fpr95};
}

void expect_matches(const OODMetricValues& got, const Reference& ref, double tol, const std::string& what) {
  EXPECT_NEAR(ref.auroc_pairs, ref.auroc_trapezoid, std::max(tol, 1e-12)) << what << " (reference self-check)";
  EXPECT_NEAR(got.auroc, ref.auroc_pairs, tol) << what;
  EXPECT_NEAR(got.aupr_in, ref.aupr_in, tol) << what;
  EXPECT_NEAR(got.aupr_out, ref.aupr_out, tol) << what;
  EXPECT_NEAR(got.fpr95tpr, ref.fpr95tpr, tol) << what;
}

void expect_identical(const OODMetricValues& a, const OODMetricValues& b) {
  EXPECT_EQ(a.auroc, b.auroc);
  EXPECT_EQ(a.aupr_in, b.aupr_in);
  EXPECT_EQ(a.aupr_out, b.aupr_out);
  EXPECT_EQ(a.fpr95tpr, b.fpr95tpr);
}

// Runs the case the way the fixture did (honouring `update_calls`).
OODMetricValues run_case(const std::string& key) {
  const json& c = case_json(key);
  const at::Tensor scores = fixture_tensor(key + "_scores");
  const at::Tensor labels = fixture_tensor(key + "_labels");
  OODMetrics m;
  if (c.contains("update_calls")) {
    for (const json& call : c.at("update_calls")) {
      const int64_t a = call.at(0), b = call.at(1);
      m.update(scores.slice(0, a, b), labels.slice(0, a, b));
    }
  } else {
    m.update(scores, labels);
  }
  return m.compute();
}

template <class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const ood::InvalidArgument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "nothing thrown";
}

// Success when f throws ood::InvalidArgument whose message contains `needle`.
template <class F>
::testing::AssertionResult throws_with(F&& f, const std::string& needle) {
  const std::string message = thrown_message(f);
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected ood::InvalidArgument containing \"" << needle
                                       << "\", got: " << message;
}

// ---------------------------------------------------------------------------------

TEST(OODMetricsFixture, FixtureIsComplete) {
  ASSERT_NO_THROW(fixtures_dir()) << "set OOD_FIXTURES_DIR to the repository's tests/fixtures directory";
  const std::vector<std::string> keys = case_keys();
  ASSERT_FALSE(keys.empty()) << "no cases read from " << metrics_file("json");
  for (const std::string& key : keys) {
    const json& c = case_json(key);
    const at::Tensor labels = fixture_tensor(key + "_labels");
    EXPECT_EQ(labels.numel(), c.at("n").get<int64_t>()) << key;
    EXPECT_EQ((labels < 0).sum().item<int64_t>(), c.at("n_ood").get<int64_t>()) << key;
    for (const char* name : kNames) {
      EXPECT_NEAR(fixture_value(key + "_" + name), c.at("result").at(name).get<double>(), 1e-12) << key << " " << name;
      EXPECT_TRUE(c.at("sklearn_float64_on_raw_scores").contains(name)) << key << " " << name;
    }
  }
}

// One instance per case of the json: a case added to the fixture is tested too.
class OODMetricsCase : public ::testing::TestWithParam<std::string> {};

TEST_P(OODMetricsCase, EqualsScikitLearnAndPytorchOodWithoutArtefacts) {
  const std::string key = GetParam();
  const json& c = case_json(key);
  const OODMetricValues got = run_case(key);
  for (const char* name : kNames) {
    const double sklearn = c.at("sklearn_float64_on_raw_scores").at(name).get<double>();
    const double pytorch_ood = fixture_value(key + "_" + name);
    const double value = get(got, name);
    EXPECT_NEAR(value, sklearn, kFixtureTol) << key << " " << name;
    if (std::abs(pytorch_ood - sklearn) <= kFixtureTol) {
      EXPECT_NEAR(value, pytorch_ood, kFixtureTol) << key << " " << name;
    } else {
      // pytorch-ood's float32 sigmoid/searchsorted artefact: must not be reproduced.
      EXPECT_GT(std::abs(value - pytorch_ood), kFixtureTol) << key << " " << name << " reproduces the artefact";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixture, OODMetricsCase, ::testing::ValuesIn(case_keys()),
                         [](const ::testing::TestParamInfo<std::string>& case_info) { return case_info.param; });

TEST(OODMetricsFixture, SigmoidSaturatedGivesTheDefinitionNotTheArtefact) {
  const at::Tensor scores = fixture_tensor("sigmoid_saturated_scores");
  EXPECT_GE(scores.min().item<double>(), 20.0);
  EXPECT_LE(scores.max().item<double>(), 65.0);
  const OODMetricValues got = run_case("sigmoid_saturated");
  EXPECT_NEAR(got.auroc, 0.6410950764006792, kFixtureTol);
  EXPECT_EQ(fixture_value("sigmoid_saturated_AUROC"), 0.5);  // pytorch-ood: one big tie after sigmoid
  EXPECT_GT(std::abs(got.auroc - 0.5), 0.1);
  expect_matches(got, brute_force(scores, fixture_tensor("sigmoid_saturated_labels")), 1e-12, "sigmoid_saturated");
}

TEST(OODMetricsFixture, TprExactly095TakesThePointWhereTprReaches19Of20) {
  const json& c = case_json("tpr_exactly_095");
  const OODMetricValues got = run_case("tpr_exactly_095");
  EXPECT_NEAR(got.fpr95tpr, 33.0 / 37.0, 1e-15);  // 37 IN samples
  EXPECT_GT(std::abs(got.fpr95tpr - c.at("fpr_if_compared_in_float64").get<double>()), 1e-3);
  // The stored float32 ROC curve has a point with TPR exactly 19/20; its FPR is ours.
  const at::Tensor tpr = fixture_tensor("tpr_exactly_095_roc_tpr");
  const at::Tensor fpr = fixture_tensor("tpr_exactly_095_roc_fpr");
  int64_t at095 = -1;
  for (int64_t k = 0; k < tpr.numel() && at095 < 0; ++k) {
    if (tpr[k].item<float>() >= 0.95f) at095 = k;
  }
  ASSERT_GE(at095, 0);
  EXPECT_EQ(tpr[at095].item<float>(), 19.0f / 20.0f);
  EXPECT_NEAR(got.fpr95tpr, fpr[at095].item<double>(), 1e-6);
  // The AUPR-IN artefact of this case (a float32 sigmoid tie of two scores one ulp
  // apart) is not reproduced: the two scores stay distinct.
  EXPECT_NEAR(got.aupr_in, c.at("sklearn_float64_on_raw_scores").at("AUPR-IN").get<double>(), 1e-6);
  EXPECT_GT(std::abs(got.aupr_in - fixture_value("tpr_exactly_095_AUPR-IN")), 1e-3);
}

TEST(OODMetricsFixture, SeveralUpdatesEqualOne) {
  const at::Tensor scores = fixture_tensor("random_scores");
  const at::Tensor labels = fixture_tensor("random_labels");
  OODMetrics once;
  once.update(scores, labels);
  OODMetrics parts;
  parts.update(scores.slice(0, 0, 1), labels.slice(0, 0, 1));
  parts.update(scores.slice(0, 1, 500), labels.slice(0, 1, 500));
  parts.update(scores.slice(0, 500, 500), labels.slice(0, 500, 500));  // empty
  parts.update(scores.slice(0, 500), labels.slice(0, 500));
  expect_identical(once.compute(), parts.compute());
}

TEST(OODMetricsFixture, TwoDimensionalInputsAreFlattened) {
  const at::Tensor scores = fixture_tensor("multi_update_2d_scores");
  const at::Tensor labels = fixture_tensor("multi_update_2d_labels");
  ASSERT_EQ(scores.dim(), 2);
  const OODMetricValues three_calls = run_case("multi_update_2d");
  OODMetrics one_call;
  one_call.update(scores, labels);
  expect_identical(three_calls, one_call.compute());
  expect_identical(three_calls, ood::compute_ood_metrics(scores.flatten(), labels.flatten()));
}

TEST(OODMetricsFixture, Float16ScoresAndInt8Labels) {
  const at::Tensor scores = fixture_tensor("big_scores");
  const at::Tensor labels = fixture_tensor("big_labels");
  ASSERT_EQ(scores.scalar_type(), at::kHalf);
  ASSERT_EQ(labels.scalar_type(), at::kChar);
  const json& sk = case_json("big").at("sklearn_float64_on_raw_scores");
  const OODMetricValues got = ood::compute_ood_metrics(scores, labels);
  for (const char* name : kNames) EXPECT_NEAR(get(got, name), sk.at(name).get<double>(), kFixtureTol) << name;
  // Same values whatever the dtypes carrying them.
  expect_identical(got, ood::compute_ood_metrics(scores.to(at::kFloat), labels.to(at::kLong)));
  expect_identical(got, ood::compute_ood_metrics(scores.to(at::kDouble), labels.to(at::kInt)));
  const at::Tensor bf16 = scores.to(at::kBFloat16);
  expect_identical(ood::compute_ood_metrics(bf16, labels), ood::compute_ood_metrics(bf16.to(at::kFloat), labels));
}

TEST(OODMetricsFixture, Float64Scores) {
  const at::Tensor scores = fixture_tensor("float64_scores_scores");
  ASSERT_EQ(scores.scalar_type(), at::kDouble);
  const json& sk = case_json("float64_scores").at("sklearn_float64_on_raw_scores");
  const OODMetricValues got = ood::compute_ood_metrics(scores, fixture_tensor("float64_scores_labels"));
  for (const char* name : kNames) EXPECT_NEAR(get(got, name), sk.at(name).get<double>(), kFixtureTol) << name;
}

TEST(OODMetricsFixture, MixedDtypesAcrossUpdatesKeepValues) {
  // float32 first, then float64 (which widens what was accumulated), then float16.
  const at::Tensor scores = fixture_tensor("ties_unit_scores");
  const at::Tensor labels = fixture_tensor("ties_unit_labels");
  OODMetrics mixed;
  mixed.update(scores.slice(0, 0, 300), labels.slice(0, 0, 300));
  mixed.update(scores.slice(0, 300, 700).to(at::kDouble), labels.slice(0, 300, 700));
  mixed.update(scores.slice(0, 700), labels.slice(0, 700));
  expect_identical(mixed.compute(), ood::compute_ood_metrics(scores, labels));
}

TEST(OODMetricsFixture, IntegerScoresAreAcceptedAsRanks) {
  // pytorch-ood refuses integer scores (fixture `errors.integer_scores`); the metrics
  // depend only on the order of the scores, so ood ranks them.
  EXPECT_TRUE(meta().at("errors").contains("integer_scores"));
  const at::Tensor scores = fixture_tensor("ties_4_levels_scores");  // {0, 1/3, 2/3, 1}
  const at::Tensor labels = fixture_tensor("ties_4_levels_labels");
  const at::Tensor levels = (scores.to(at::kDouble) * 3).round().to(at::kLong);
  EXPECT_EQ(std::get<0>(at::_unique(levels)).numel(), 4);
  const OODMetricValues expected = ood::compute_ood_metrics(scores, labels);
  const OODMetricValues as_long = ood::compute_ood_metrics(levels, labels);
  const OODMetricValues as_int8 = ood::compute_ood_metrics(levels.to(at::kChar), labels);
  for (const char* name : kNames) {
    EXPECT_NEAR(get(as_long, name), get(expected, name), 1e-12) << name;
    EXPECT_NEAR(get(as_int8, name), get(expected, name), 1e-12) << name;
  }
}

TEST(OODMetricsFixture, SpanApiEqualsTensorApi) {
  const at::Tensor scores = fixture_tensor("random_scores").contiguous();
  const at::Tensor labels = fixture_tensor("random_labels").to(at::kLong).contiguous();
  const std::span<const float> s(scores.data_ptr<float>(), scores.numel());
  const std::span<const int64_t> l(labels.data_ptr<int64_t>(), labels.numel());
  expect_identical(ood::compute_ood_metrics(s, l), ood::compute_ood_metrics(scores, labels));
  const at::Tensor d = scores.to(at::kDouble);
  const std::span<const double> sd(d.data_ptr<double>(), d.numel());
  expect_identical(ood::compute_ood_metrics(sd, l), ood::compute_ood_metrics(scores, labels));
}

// ---------------------------------------------------------------------------------
// Against the brute-force reference on random data with heavy ties, extreme values,
// subnormals and both zeros, below and above the radix-sort threshold.

TEST(OODMetricsReference, RandomSetsWithTiesMatchBruteForce) {
  std::mt19937_64 rng(20240611);
  const std::vector<double> pool = {
      -std::numeric_limits<float>::max(), -1e30, -3.5, -1.0, -0.0, 0.0, 1e-45, 1e-40, 1e-38, 0.25, 0.5, 1.0, 2.5, 1e30,
      std::numeric_limits<float>::max()};
  std::uniform_int_distribution<int> size(2, 1400);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = trial < 4 ? 2 + trial : size(rng);
    const double tie_share = unit(rng);
    const double ood_share = 0.05 + 0.9 * unit(rng);
    std::vector<float> s32(n);
    std::vector<int64_t> labels(n);
    for (int k = 0; k < n; ++k) {
      s32[k] = static_cast<float>(unit(rng) < tie_share ? pool[rng() % pool.size()] : normal(rng));
      labels[k] = unit(rng) < ood_share ? -1 - static_cast<int64_t>(rng() % 3) : static_cast<int64_t>(rng() % 5);
    }
    labels[0] = -1;
    labels[1] = 0;
    const std::vector<double> s64(s32.begin(), s32.end());
    const Reference ref = brute_force(s64, labels);
    const std::string what = "trial " + std::to_string(trial) + " n=" + std::to_string(n);
    expect_matches(ood::compute_ood_metrics(std::span<const float>(s32), labels), ref, 1e-12, what + " float");
    expect_matches(ood::compute_ood_metrics(std::span<const double>(s64), labels), ref, 1e-12, what + " double");
  }
}

// Large sets go through the radix sort (MSD pass over the highest differing bits, LSD
// passes per bucket): continuous, clustered (a few thousand ulps wide), constant,
// heavy-tie and 64-bit inputs, and sizes around the small-sort threshold.
TEST(OODMetricsReference, LargeSetsMatchSortedCurveReference) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  struct Setup {
    const char* name;
    std::size_t n;
    std::function<double(bool)> draw;  // argument: is OOD
    bool as_double;
  };
  const float base = 0.5f;
  const std::vector<Setup> setups = {
      {"continuous_f32", 300000, [&](bool o) { return normal(rng) + (o ? 1.0 : 0.0); }, false},
      {"continuous_f64", 300000, [&](bool o) { return normal(rng) * 1e3 + (o ? 700.0 : 0.0); }, true},
      {"clustered_5000_ulps", 200000,
       [&](bool o) {
         const uint32_t k = static_cast<uint32_t>(rng() % 5000) + (o ? 1500u : 0u);
         return static_cast<double>(std::bit_cast<float>(std::bit_cast<uint32_t>(base) + k));
       },
       false},
      {"within_11_bits", 100000,
       [&](bool o) {
         const uint32_t k = static_cast<uint32_t>(rng() % 1500) + (o ? 300u : 0u);
         return static_cast<double>(std::bit_cast<float>(std::bit_cast<uint32_t>(1.0f) + k));
       },
       false},
      {"constant", 100000, [&](bool) { return 3.25; }, false},
      {"ten_levels_signed_f64", 250000,
       [&](bool o) { return static_cast<double>(static_cast<int>(rng() % 10) - 5 + (o ? 1 : 0)) * 0.1; }, true},
      {"n_1023", 1023, [&](bool o) { return normal(rng) + (o ? 0.5 : 0.0); }, false},
      {"n_1024", 1024, [&](bool o) { return normal(rng) + (o ? 0.5 : 0.0); }, false},
      {"n_1025_f64", 1025, [&](bool o) { return normal(rng) + (o ? 0.5 : 0.0); }, true},
  };
  for (const Setup& setup : setups) {
    std::vector<int64_t> labels(setup.n);
    std::vector<float> s32(setup.n);
    std::vector<double> s64(setup.n);
    for (std::size_t k = 0; k < setup.n; ++k) {
      const bool o = unit(rng) < 0.3 || k == 0;
      labels[k] = o ? -1 : static_cast<int64_t>(k % 7);
      if (k == 1) labels[k] = 0;
      s64[k] = setup.draw(o);
      if (!setup.as_double) s64[k] = static_cast<float>(s64[k]);
      s32[k] = static_cast<float>(s64[k]);
    }
    const Reference ref = sorted_curve_reference(s64, labels);
    const OODMetricValues got = setup.as_double ? ood::compute_ood_metrics(std::span<const double>(s64), labels)
                                                : ood::compute_ood_metrics(std::span<const float>(s32), labels);
    expect_matches(got, ref, 1e-9, setup.name);
  }
}

TEST(OODMetricsReference, NegativeZeroTiesWithPositiveZero) {
  const std::vector<float> s = {-0.0f, 0.0f, 1.0f, -1.0f};
  const std::vector<int64_t> l = {-1, 0, -1, 0};
  const OODMetricValues got = ood::compute_ood_metrics(std::span<const float>(s), l);
  EXPECT_DOUBLE_EQ(got.auroc, (1.0 + 1.0 + 0.5 + 1.0) / 4.0);
  expect_matches(got, brute_force(std::vector<double>(s.begin(), s.end()), l), 1e-12, "zeros");
}

TEST(OODMetricsReference, HandComputedExample) {
  // OOD 0.9, 0.8; IN 0.8, 0.3, 0.1 (P = 2, N = 3). Groups from the top: {0.9: 1 OOD},
  // {0.8: 1 OOD + 1 IN}, {0.3: 1 IN}, {0.1: 1 IN}.
  // ROC (0,0) (0,1/2) (1/3,1) (2/3,1) (1,1): AUROC = 1/3 * 3/4 + 2/3 = 11/12
  //   (pairs: 3 wins for 0.9, 2 wins + 1 tie for 0.8 -> 5.5 / 6).
  // PR-OUT (0,1) (1/2,1) (1,2/3) (1,1/2) (1,2/5): 1/2 + 1/2 * 5/6 = 11/12.
  // PR-IN, thresholds ascending 0.1, 0.3, 0.8, 0.9:
  //   (0,1) (1/3,1) (2/3,1) (1,3/4) (1,3/5): 2/3 + 1/3 * 7/8 = 23/24.
  // FPR95TPR: TPR first reaches 0.95 at 0.8, where FPR = 1/3.
  const std::vector<double> s = {0.3, 0.8, 0.9, 0.1, 0.8};
  const std::vector<int64_t> l = {2, 0, -1, 4, -1};
  const OODMetricValues got = ood::compute_ood_metrics(std::span<const double>(s), l);
  EXPECT_DOUBLE_EQ(got.auroc, 11.0 / 12.0);
  EXPECT_DOUBLE_EQ(got.aupr_out, 11.0 / 12.0);
  EXPECT_DOUBLE_EQ(got.aupr_in, 23.0 / 24.0);
  EXPECT_DOUBLE_EQ(got.fpr95tpr, 1.0 / 3.0);
}

TEST(OODMetrics, NamesAsPytorchOodPrintsThem) {
  const auto named = ood::as_named({0.1, 0.2, 0.3, 0.4});
  ASSERT_EQ(named.size(), 4u);
  EXPECT_EQ(named[0], (std::pair<std::string, double>("AUROC", 0.1)));
  EXPECT_EQ(named[1], (std::pair<std::string, double>("AUPR-IN", 0.2)));
  EXPECT_EQ(named[2], (std::pair<std::string, double>("AUPR-OUT", 0.3)));
  EXPECT_EQ(named[3], (std::pair<std::string, double>("FPR95TPR", 0.4)));
}

TEST(OODMetrics, ParseMode) {
  EXPECT_EQ(OODMetrics::parse_mode("classification"), OODMetrics::Mode::Classification);
  EXPECT_EQ(OODMetrics::parse_mode("segmentation"), OODMetrics::Mode::Segmentation);
  EXPECT_TRUE(
      throws_with([] { OODMetrics::parse_mode("detection"); }, "mode must be 'segmentation' or 'classification'"));
}

TEST(OODMetrics, ResetForgetsEverything) {
  OODMetrics m;
  m.update(fixture_tensor("random_scores"), fixture_tensor("random_labels"));
  m.reset();
  EXPECT_TRUE(throws_with([&] { m.compute(); }, "no scores to compute metrics on"));
  m.update(fixture_tensor("perfect_scores"), fixture_tensor("perfect_labels"));
  EXPECT_EQ(m.compute().auroc, 1.0);
}

// ---------------------------------------------------------------------------------
// Errors.

TEST(OODMetricsErrors, Empty) {
  EXPECT_TRUE(meta().at("errors").contains("empty"));
  OODMetrics m;
  EXPECT_TRUE(throws_with([&] { m.compute(); }, "no scores to compute metrics on"));
  m.update(at::zeros({0}), at::zeros({0}, at::kLong));
  EXPECT_TRUE(throws_with([&] { m.compute(); }, "no scores to compute metrics on"));
  EXPECT_TRUE(throws_with([] { ood::compute_ood_metrics(std::span<const float>(), std::span<const int64_t>()); },
                          "no scores to compute metrics on"));
}

TEST(OODMetricsErrors, OnlyInOrOnlyOod) {
  EXPECT_TRUE(meta().at("errors").contains("only_in"));
  EXPECT_TRUE(meta().at("errors").contains("only_ood"));
  const at::Tensor scores = at::rand({120});
  EXPECT_TRUE(throws_with([&] { ood::compute_ood_metrics(scores, at::zeros({120}, at::kLong)); },
                          "metrics need both IN (label >= 0) and OOD (label < 0) samples; got 120 IN and 0 OOD"));
  EXPECT_TRUE(
      throws_with([&] { ood::compute_ood_metrics(scores, at::full({120}, -1, at::kLong)); }, "got 0 IN and 120 OOD"));
  // uint8 labels cannot mark OOD samples.
  EXPECT_TRUE(
      throws_with([&] { ood::compute_ood_metrics(scores, at::zeros({120}, at::kByte)); }, "got 120 IN and 0 OOD"));
}

TEST(OODMetricsErrors, NonFiniteScoresNameIndexAndValueAndLeaveStateUnchanged) {
  at::Tensor scores = fixture_tensor("random_scores").clone();
  const at::Tensor labels = fixture_tensor("random_labels");
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
    at::Tensor s = scores.clone();
    s[17] = bad;
    s[400] = bad;
    OODMetrics m;
    m.update(scores.slice(0, 0, 10), labels.slice(0, 0, 10));
    const std::string msg = thrown_message([&] { m.update(s, labels); });
    EXPECT_NE(msg.find("index 17"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::isnan(bad) ? "nan" : (bad > 0 ? "inf" : "-inf")), std::string::npos) << msg;
    m.update(scores.slice(0, 10), labels.slice(0, 10));
    expect_identical(m.compute(), ood::compute_ood_metrics(scores, labels));
    // Also for float64 input and through the span API.
    EXPECT_TRUE(throws_with([&] { ood::compute_ood_metrics(s.to(at::kDouble), labels); }, "index 17"));
    const std::vector<float> v(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
    const at::Tensor l64 = labels.to(at::kLong).contiguous();
    EXPECT_TRUE(throws_with(
        [&] {
          ood::compute_ood_metrics(std::span<const float>(v),
                                   std::span<const int64_t>(l64.data_ptr<int64_t>(), l64.numel()));
        },
        "index 17"));
  }
}

TEST(OODMetricsErrors, ShapeMismatchNamesBothShapes) {
  EXPECT_TRUE(meta().at("errors").contains("shape_mismatch"));
  OODMetrics m;
  std::string msg = thrown_message([&] { m.update(at::rand({4}), at::zeros({5}, at::kLong)); });
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5]"), std::string::npos) << msg;
  msg = thrown_message([&] { m.update(at::rand({2, 3}), at::zeros({3, 2}, at::kLong)); });
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 2]"), std::string::npos) << msg;
  const std::vector<float> s(4, 0.5f);
  const std::vector<int64_t> l(5, 0);
  EXPECT_TRUE(throws_with([&] { ood::compute_ood_metrics(std::span<const float>(s), l); }, "same size"));
}

TEST(OODMetricsErrors, LabelsMustBeIntegers) {
  OODMetrics m;
  std::string msg = thrown_message([&] { m.update(at::rand({4}), at::zeros({4})); });
  EXPECT_NE(msg.find("integer dtype"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Float"), std::string::npos) << msg;
  msg = thrown_message([&] { m.update(at::rand({4}), at::zeros({4}, at::kBool)); });
  EXPECT_NE(msg.find("Bool"), std::string::npos) << msg;
  msg = thrown_message([&] { m.update(at::zeros({4}, at::kBool), at::zeros({4}, at::kLong)); });
  EXPECT_NE(msg.find("scores must have a floating or integer dtype"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------
// Segmentation.

OODMetricValues per_image_fixture(const std::string& prefix, int64_t image) {
  return {fixture_tensor(prefix + "_per_image_AUROC")[image].item<double>(),
          fixture_tensor(prefix + "_per_image_AUPR-IN")[image].item<double>(),
          fixture_tensor(prefix + "_per_image_AUPR-OUT")[image].item<double>(),
          fixture_tensor(prefix + "_per_image_FPR95TPR")[image].item<double>()};
}

OODMetrics run_segmentation(std::optional<int64_t> void_label, const at::Tensor& labels) {
  const at::Tensor scores = fixture_tensor("seg_scores");
  OODMetrics m(OODMetrics::Mode::Segmentation, void_label);
  m.update(scores.slice(0, 0, 1), labels.slice(0, 0, 1));  // as the fixture did
  m.update(scores.slice(0, 1), labels.slice(0, 1));
  return m;
}

// Per-image brute-force values on the pixels that survive void removal.
std::vector<Reference> seg_reference(const at::Tensor& labels, std::optional<int64_t> void_label) {
  const at::Tensor scores = fixture_tensor("seg_scores");
  std::vector<Reference> refs;
  for (int64_t b = 0; b < scores.size(0); ++b) {
    at::Tensor s = scores[b].flatten();
    at::Tensor l = labels[b].flatten();
    if (void_label) {
      const at::Tensor keep = l != *void_label;
      s = s.masked_select(keep);
      l = l.masked_select(keep);
    }
    refs.push_back(brute_force(s, l));
  }
  return refs;
}

void check_segmentation(const std::string& prefix, std::optional<int64_t> void_label) {
  const OODMetrics m = run_segmentation(void_label, fixture_tensor("seg_labels"));
  const std::vector<Reference> refs = seg_reference(fixture_tensor("seg_labels"), void_label);
  ASSERT_EQ(m.per_image().size(), 3u);
  OODMetricValues mean_ref{};
  for (int64_t b = 0; b < 3; ++b) {
    const OODMetricValues& got = m.per_image()[b];
    const OODMetricValues fixture = per_image_fixture(prefix, b);
    const std::string what = prefix + " image " + std::to_string(b);
    // pytorch-ood's per-image values carry no artefact here (scores within [-2.1, 4.3]:
    // the float32 sigmoid keeps them distinct): equal within the fixture tolerance.
    for (const char* name : kNames) EXPECT_NEAR(get(got, name), get(fixture, name), kFixtureTol) << what << name;
    expect_matches(got, refs[b], 1e-12, what);
    mean_ref.auroc += refs[b].auroc_pairs / 3;
    mean_ref.aupr_in += refs[b].aupr_in / 3;
    mean_ref.aupr_out += refs[b].aupr_out / 3;
    mean_ref.fpr95tpr += refs[b].fpr95tpr / 3;
  }
  const OODMetricValues mean = m.compute();
  for (const char* name : kNames) {
    EXPECT_NEAR(get(mean, name), fixture_value(prefix + "_" + name), kFixtureTol) << prefix << " mean " << name;
    EXPECT_NEAR(get(mean, name), get(mean_ref, name), 1e-12) << prefix << " mean " << name;
  }
}

TEST(OODMetricsSegmentation, VoidLabel255) {
  EXPECT_EQ(meta().at("segmentation").at("void").at("constructor").at("void_label").get<int64_t>(), 255);
  check_segmentation("seg_void", 255);
}

TEST(OODMetricsSegmentation, NoVoidLabel) { check_segmentation("seg_novoid", std::nullopt); }

TEST(OODMetricsSegmentation, VoidLabelZeroIsHonoured) {
  // pytorch-ood's `if self.void_label:` skips void label 0, so its seg_void0_* values
  // equal the no-void ones; ood removes the label-0 pixels (real class 0 included).
  const at::Tensor labels = fixture_tensor("seg_void0_labels");
  const OODMetrics m = run_segmentation(0, labels);
  const std::vector<Reference> refs = seg_reference(labels, 0);
  OODMetricValues mean_ref{};
  for (int64_t b = 0; b < 3; ++b) {
    expect_matches(m.per_image()[b], refs[b], 1e-12, "void0 image " + std::to_string(b));
    mean_ref.auroc += refs[b].auroc_pairs / 3;
    mean_ref.aupr_in += refs[b].aupr_in / 3;
    mean_ref.aupr_out += refs[b].aupr_out / 3;
    mean_ref.fpr95tpr += refs[b].fpr95tpr / 3;
  }
  const OODMetricValues got = m.compute();
  int artefacts = 0;
  for (const char* name : kNames) {
    EXPECT_NEAR(get(got, name), get(mean_ref, name), 1e-12) << name;
    const double fixture_void0 = fixture_value(std::string("seg_void0_") + name);
    if (std::abs(fixture_void0 - fixture_value(std::string("seg_novoid_") + name)) <= kFixtureTol) {
      ++artefacts;
      EXPECT_GT(std::abs(get(got, name) - fixture_void0), kFixtureTol) << name << " reproduces the artefact";
    }
  }
  EXPECT_EQ(artefacts, 4);
}

TEST(OODMetricsSegmentation, TwoDimensionalInputIsOneRowPerImage) {
  const at::Tensor scores = fixture_tensor("seg_scores");
  const at::Tensor labels = fixture_tensor("seg_labels");
  OODMetrics flat(OODMetrics::Mode::Segmentation, 255);
  flat.update(scores.reshape({3, -1}), labels.reshape({3, -1}));
  const OODMetrics three_d = run_segmentation(255, labels);
  expect_identical(flat.compute(), three_d.compute());
}

TEST(OODMetricsSegmentation, Errors) {
  OODMetrics m(OODMetrics::Mode::Segmentation, 255);
  EXPECT_TRUE(throws_with([&] { m.compute(); }, "no scores to compute metrics on"));
  std::string msg = thrown_message([&] { m.update(at::rand({30}), at::zeros({30}, at::kLong)); });
  EXPECT_NE(msg.find("at least 2 dims"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[30]"), std::string::npos) << msg;

  // Image 1 loses its OOD pixels: the error names it, the earlier update is kept.
  const at::Tensor scores = fixture_tensor("seg_scores");
  at::Tensor labels = fixture_tensor("seg_labels").clone();
  m.update(scores.slice(0, 0, 1), labels.slice(0, 0, 1));
  labels[2].masked_fill_(labels[2] < 0, 255);
  msg = thrown_message([&] { m.update(scores.slice(0, 1), labels.slice(0, 1)); });
  EXPECT_NE(msg.find("image 2 (index 1 of this batch)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0 OOD"), std::string::npos) << msg;
  EXPECT_NE(msg.find("void label 255"), std::string::npos) << msg;
  EXPECT_EQ(m.per_image().size(), 1u);

  at::Tensor s = scores.clone();
  s[1][2][3] = std::numeric_limits<float>::quiet_NaN();
  msg = thrown_message([&] { m.update(s, fixture_tensor("seg_labels")); });
  EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  EXPECT_NE(msg.find("flat index 43"), std::string::npos) << msg;
  EXPECT_NE(msg.find("image 2"), std::string::npos) << msg;
  EXPECT_EQ(m.per_image().size(), 1u);
}

TEST(OODMetricsSegmentation, NonFiniteScoresOfVoidPixelsAreIgnored) {
  const at::Tensor labels = fixture_tensor("seg_labels");
  at::Tensor scores = fixture_tensor("seg_scores").clone();
  scores.masked_fill_(labels == 255, std::numeric_limits<float>::quiet_NaN());
  OODMetrics m(OODMetrics::Mode::Segmentation, 255);
  m.update(scores, labels);
  expect_identical(m.compute(), run_segmentation(255, labels).compute());
}

}  // namespace
