// The evaluator: one forward per batch for all detectors, fitting, scores in dataset
// order, metrics by role, and errors naming the detector.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <thread>

#include "ood/core/evaluator.hpp"
#include "ood/core/results.hpp"
#include "ood/error.hpp"
#include "ood/logit_detector.hpp"
#include "ood/views.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

// A linear classifier that counts its forward passes.
class CountingModel final : public Model {
 public:
  CountingModel() : a_(at::randn({4, 3}, at::TensorOptions().dtype(at::kFloat))), b_(at::randn({3, 5})) {}
  at::Tensor features(const at::Tensor& x) override {
    ++feature_calls;
    return x.flatten(1).matmul(a_);
  }
  at::Tensor head(const at::Tensor& f) override {
    ++head_calls;
    return f.matmul(b_);
  }
  void set_mode(ModelMode m) override { mode_ = m; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {}; }
  TensorDict state_dict() const override { return {}; }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override { return {5, 3, {4}}; }
  int feature_calls = 0, head_calls = 0;

 private:
  at::Tensor a_, b_;
  ModelMode mode_ = ModelMode::Eval;
};

class TensorDataset final : public Dataset {
 public:
  TensorDataset(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  std::int64_t size() const override { return x_.size(0); }
  Sample get(std::int64_t i) const override { return {x_[i], y_[i]}; }
  DatasetInfo info() const override { return {}; }

 private:
  at::Tensor x_, y_;
};

// Mean of the fit data's features; scores are distances to it.
class MeanDetector final : public Detector {
 public:
  DetectorNeeds needs() const override {
    DetectorNeeds n;
    n.features = n.fit = n.fit_labels = true;
    return n;
  }
  void fit_batch(Views& v, const at::Tensor& labels) override {
    sum_ = sum_.defined() ? sum_ + v.features().sum(0) : v.features().sum(0);
    count_ += v.features().size(0);
    labels_seen += labels.size(0);
  }
  void finish_fit() override { mean_ = sum_ / static_cast<double>(count_); }
  bool is_fitted() const override { return mean_.defined(); }
  at::Tensor score(Views& v) override {
    if (!mean_.defined()) throw StateError("not fitted");
    return (v.features() - mean_).norm(2, 1);
  }
  std::int64_t labels_seen = 0;

 private:
  at::Tensor sum_, mean_;
  std::int64_t count_ = 0;
};

class WrongShape final : public Detector {
 public:
  DetectorNeeds needs() const override { return {}; }
  at::Tensor score(Views& v) override { return at::zeros({v.batch_size(), 2}); }
};

std::shared_ptr<const Dataset> data(std::int64_t n, float shift, std::int64_t label) {
  return std::make_shared<TensorDataset>(at::randn({n, 1, 2, 2}) + shift, at::full({n}, label, at::kLong));
}

std::vector<NamedDetector> four_logit_detectors() {
  std::vector<NamedDetector> d;
  d.push_back({"a", std::make_shared<LogitDetector>("a", [](const at::Tensor& z) { return -std::get<0>(z.max(1)); }), false, ""});
  d.push_back({"b", std::make_shared<LogitDetector>("b", [](const at::Tensor& z) { return -at::logsumexp(z, 1); }), false, ""});
  d.push_back({"c", std::make_shared<LogitDetector>("c", [](const at::Tensor& z) { return z.std(1); }), false, ""});
  d.push_back({"d", std::make_shared<LogitDetector>("d", [](const at::Tensor& z) { return z.sum(1); }), false, ""});
  return d;
}

TEST(Evaluator, OneForwardPerBatchForAllDetectors) {
  auto model = std::make_shared<CountingModel>();
  EvaluatorOptions o;
  o.batch_size = 8;
  o.workers = 2;
  Evaluator ev(model, four_logit_detectors(), {}, o);
  const auto result = ev.evaluate({"in", "/data/in", data(20, 0, 1)}, {{"far", "/data/out/far", data(12, 3, -1)}});
  // 20 samples -> 3 batches, 12 -> 2 batches: 5 forward passes for 4 detectors.
  EXPECT_EQ(model->feature_calls, 5);
  EXPECT_EQ(model->head_calls, 5);
  ASSERT_EQ(result.metrics.size(), 1u);
  ASSERT_EQ(result.metrics[0].size(), 4u);
  EXPECT_EQ(result.in.scores[0].size(0), 20);
  EXPECT_EQ(result.out[0].scores[3].size(0), 12);
}

// A dataset whose samples take `delay` each to read.
class SlowDataset final : public Dataset {
 public:
  SlowDataset(std::shared_ptr<const Dataset> inner, std::chrono::milliseconds delay)
      : inner_(std::move(inner)), delay_(delay) {}
  std::int64_t size() const override { return inner_->size(); }
  Sample get(std::int64_t i) const override {
    std::this_thread::sleep_for(delay_);
    return inner_->get(i);
  }
  DatasetInfo info() const override { return {}; }

 private:
  std::shared_ptr<const Dataset> inner_;
  std::chrono::milliseconds delay_;
};

TEST(Evaluator, CountsTheTimeScoringWaitsForData) {
  auto model = std::make_shared<CountingModel>();
  EvaluatorOptions o;
  o.batch_size = 2;
  o.workers = 1;
  Evaluator ev(model, four_logit_detectors(), {}, o);
  // 6 + 4 samples of 15 ms each, read one after the other by one worker (started with
  // each set's loader) while the model takes microseconds: nearly all of the scoring,
  // about 10 x 15 ms, is waiting.
  const auto slow = [](std::int64_t n, float shift, std::int64_t label) {
    return std::make_shared<SlowDataset>(data(n, shift, label), std::chrono::milliseconds(15));
  };
  const auto result = ev.evaluate({"in", "/data/in", slow(6, 0, 0)}, {{"far", "/data/out/far", slow(4, 3, -1)}});
  EXPECT_GE(result.seconds_score_waiting_for_data, 0.1);
  EXPECT_LE(result.seconds_score_waiting_for_data, result.seconds_score);
  EXPECT_DOUBLE_EQ(ev.seconds_waiting_for_data(), result.seconds_score_waiting_for_data);

  // Data in memory: the waits are what they are, never more than the scoring itself.
  Evaluator fast(model, four_logit_detectors(), {}, o);
  const auto quick = fast.evaluate({"in", "/data/in", data(6, 0, 0)}, {{"far", "/data/out/far", data(4, 3, -1)}});
  EXPECT_GE(quick.seconds_score_waiting_for_data, 0.0);
  EXPECT_LE(quick.seconds_score_waiting_for_data, quick.seconds_score);
}

TEST(Evaluator, ScoresAreInDatasetOrderAndEqualDirectComputation) {
  auto model = std::make_shared<CountingModel>();
  auto in = data(13, 0, 0);
  EvaluatorOptions o;
  o.batch_size = 4;
  o.workers = 3;
  Evaluator ev(model, four_logit_detectors(), {}, o);
  const SetScores s = ev.score({"in", "/data/in", in}, false);
  std::vector<at::Tensor> xs;
  for (std::int64_t i = 0; i < in->size(); ++i) xs.push_back(in->get(i).input);
  const at::Tensor logits = model->logits(at::stack(xs));
  EXPECT_TRUE(test::all_close(s.scores[1], -at::logsumexp(logits, 1), 1e-6, 1e-6));
  EXPECT_TRUE(s.indices.equal(at::arange(13, at::kLong)));
}

TEST(Evaluator, MetricsFollowTheSetsRoles) {
  SetScores in{"in", false, at::zeros({3}, at::kLong), at::arange(3), {at::tensor({0.1f, 0.2f, 0.3f})}};
  // Labels >= 0 in an OOD set still count as OOD (its role decides).
  SetScores out{"o", true, at::zeros({2}, at::kLong), at::arange(2), {at::tensor({0.4f, 0.5f})}};
  const OODMetricValues m = metrics_for(in, out, 0);
  EXPECT_DOUBLE_EQ(m.auroc, 1.0);
  EXPECT_DOUBLE_EQ(m.fpr95tpr, 0.0);
}

TEST(Evaluator, FitsOnceWithSharedForwardAndLabels) {
  auto model = std::make_shared<CountingModel>();
  auto mean = std::make_shared<MeanDetector>();
  std::vector<NamedDetector> dets = four_logit_detectors();
  dets.push_back({"mean", mean, true, ""});
  EvaluatorOptions o;
  o.batch_size = 10;
  Evaluator ev(model, dets, {}, o);
  ev.fit({"fit", "/data/fit", data(30, 0, 2)});
  EXPECT_EQ(mean->labels_seen, 30);
  EXPECT_TRUE(mean->is_fitted());
  EXPECT_EQ(model->feature_calls, 3);
  const auto r = ev.evaluate({"in", "/data/in", data(10, 0, 2)}, {{"far", "/data/out/far", data(10, 8, -1)}});
  EXPECT_GT(r.metrics[0][4].auroc, 0.9);  // far-away data is far from the fitted mean
}

TEST(Evaluator, WrongScoreShapeFailsThatDetectorOnly) {
  auto model = std::make_shared<CountingModel>();
  std::vector<NamedDetector> dets = four_logit_detectors();
  dets.insert(dets.begin(), NamedDetector{"bad", std::make_shared<WrongShape>(), false, "/plugins/ood-bad.so"});
  Evaluator ev(model, dets, {}, {});
  const auto r = ev.evaluate({"in", "/data/in", data(4, 0, 0)}, {{"o", "/data/out/o", data(4, 0, -1)}});
  ASSERT_EQ(r.failures.size(), dets.size());
  EXPECT_TRUE(r.any_failed());
  EXPECT_NE(r.failures[0].find("/detectors/bad: returned scores Float [4, 2]"), std::string::npos) << r.failures[0];
  EXPECT_NE(r.failures[0].find("a bug in the detector's plugin, not in the pipeline [plugin /plugins/ood-bad.so]"),
            std::string::npos)
      << r.failures[0];
  EXPECT_FALSE(r.in.scores[0].defined());
  // The healthy ones still have their scores and metrics.
  for (std::size_t d = 1; d < dets.size(); ++d) {
    EXPECT_EQ(r.failures[d], "");
    EXPECT_EQ(r.in.scores[d].size(0), 4);
  }
  const auto doc = metrics_json(r, nlohmann::ordered_json::object());
  EXPECT_EQ(doc["o"]["bad"]["failed"], true);
  EXPECT_TRUE(doc["o"][dets[1].name].contains("AUROC"));
  EXPECT_NE(scores_csv(r).find("in,0,0,,"), std::string::npos) << scores_csv(r);
}

TEST(Evaluator, NanScoresFailTheMetricsWithTheDetectorsName) {
  auto model = std::make_shared<CountingModel>();
  std::vector<NamedDetector> d = {
      {"nan", std::make_shared<LogitDetector>("nan", [](const at::Tensor& z) { return z.sum(1) * NAN; }), false, ""}};
  Evaluator ev(model, d, {}, {});
  const auto r = ev.evaluate({"in", "/data/in", data(4, 0, 0)}, {{"o", "/data/out/o", data(4, 0, -1)}});
  EXPECT_NE(r.failures[0].find("/detectors/nan: metrics on 'o'"), std::string::npos) << r.failures[0];
}

TEST(Evaluator, EmptySetIsAnError) {
  auto model = std::make_shared<CountingModel>();
  Evaluator ev(model, four_logit_detectors(), {}, {});
  EXPECT_THROW(ev.score({"in", "/data/in", std::make_shared<TensorDataset>(at::zeros({0, 1, 2, 2}),
                                                                           at::zeros({0}, at::kLong))},
                        false),
               Error);
}

}  // namespace
}  // namespace ood::core
