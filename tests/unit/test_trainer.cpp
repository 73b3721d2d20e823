// The training stage: schedules and warm-up, the exact SGD step, determinism, resume
// equal to an uninterrupted run (SGD with momentum, Adam, AdamW), auxiliary outliers
// mixed into every batch, and the errors (non-finite loss, failing loss).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "ood/core/trainer.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

class TensorDataset final : public Dataset {
 public:
  TensorDataset(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  std::int64_t size() const override { return x_.size(0); }
  Sample get(std::int64_t i) const override { return {x_[i], y_[i]}; }
  DatasetInfo info() const override { return {}; }

 private:
  at::Tensor x_, y_;
};

// Records the targets of every batch, then delegates to cross-entropy.
class RecordingLoss final : public Loss {
 public:
  explicit RecordingLoss(std::shared_ptr<Loss> inner) : inner_(std::move(inner)) {}
  at::Tensor forward(Views& views, const at::Tensor& targets) override {
    seen.push_back(targets.clone());
    return inner_->forward(views, targets);
  }
  std::vector<at::Tensor> seen;

 private:
  std::shared_ptr<Loss> inner_;
};

// With dropout (drawn from LibTorch's global generator) unless `drop_rate` is 0.
std::shared_ptr<Model> small_model(double drop_rate = 0.3) {
  at::manual_seed(7);
  return test::make_model("wide-resnet", R"({"num_classes": 3, "depth": 10, "widen_factor": 1, "in_channels": 1, )"
                                         R"("drop_rate": )" + std::to_string(drop_rate) + "}");
}

std::shared_ptr<const Dataset> small_data(std::int64_t n = 24, std::uint64_t seed = 1) {
  at::manual_seed(seed);
  return std::make_shared<TensorDataset>(at::randn({n, 1, 8, 8}), at::arange(n, at::kLong).remainder(3));
}

TrainPlan plan_with(std::int64_t epochs, std::int64_t batch) {
  TrainPlan p;
  p.epochs = epochs;
  p.batch_size = batch;
  p.workers = 0;
  p.lr = 0.05;
  p.schedule = "constant";
  return p;
}

TrainInputs inputs_of(std::shared_ptr<const Dataset> data) { return {std::move(data), {}, nullptr, {}, "cross-entropy"}; }

bool same_state(Model& a, Model& b) {
  const TensorDict sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [k, t] : sa)
    if (!at::equal(t, sb.at(k))) return false;
  return true;
}

TEST(Trainer, LearningRateWarmupThenSchedule) {
  TrainPlan p;
  p.lr = 1.0;
  p.warmup_epochs = 2;
  p.schedule = "cosine";
  // 10 steps per epoch, 5 epochs: steps 0..19 warm up linearly, cosine over 20..49.
  EXPECT_DOUBLE_EQ(learning_rate(p, 0, 50, 10), 1.0 / 20);
  EXPECT_DOUBLE_EQ(learning_rate(p, 19, 50, 10), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(p, 20, 50, 10), 1.0);
  EXPECT_NEAR(learning_rate(p, 35, 50, 10), 0.5, 1e-12);
  p.schedule = "step";
  p.step_size = 1;
  p.gamma = 0.5;
  EXPECT_DOUBLE_EQ(learning_rate(p, 29, 50, 10), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(p, 30, 50, 10), 0.5);
  p.schedule = "constant";
  p.warmup_epochs = 0;
  EXPECT_DOUBLE_EQ(learning_rate(p, 42, 50, 10), 1.0);
}

TEST(Trainer, OnePlainSgdStepMovesEveryParameterByMinusTheGradient) {
  auto model = small_model(0.0);  // no dropout: the reference pass must see the same network
  auto reference = small_model(0.0);
  ASSERT_TRUE(same_state(*model, *reference));
  auto data = small_data(12);
  auto loss = test::make_loss("cross-entropy");
  TrainPlan p = plan_with(1, 12);
  p.lr = 1.0;
  p.momentum = 0.0;
  p.weight_decay = 0.0;
  p.nesterov = false;

  // The gradient the loss defines, on the same batch (one batch: the order does not
  // change the mean) with the model in training mode, as the trainer runs it.
  std::vector<at::Tensor> x, y;
  for (std::int64_t i = 0; i < 12; ++i) {
    x.push_back(data->get(i).input);
    y.push_back(data->get(i).target);
  }
  reference->set_mode(ModelMode::Train);
  Views views(*reference, at::stack(x), true);
  loss->forward(views, at::stack(y)).backward();
  std::vector<at::Tensor> before, grads;
  for (auto& t : reference->parameters()) {
    before.push_back(t.detach().clone());
    grads.push_back(t.grad().clone());
  }

  train_model(*model, *loss, inputs_of(data), p, 0, at::kCPU, {});
  const auto after = model->parameters();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(test::all_close(after[i].detach(), before[i] - grads[i], 1e-5, 1e-6)) << "parameter " << i;
}

TEST(Trainer, SameSeedSameModel) {
  auto a = small_model(), b = small_model();
  auto loss = test::make_loss("cross-entropy");
  train_model(*a, *loss, inputs_of(small_data()), plan_with(2, 8), 3, at::kCPU, {});
  train_model(*b, *loss, inputs_of(small_data()), plan_with(2, 8), 3, at::kCPU, {});
  EXPECT_TRUE(same_state(*a, *b));
}

class TrainerResume : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainerResume, ResumeEqualsAnUninterruptedRun) {
  const auto dir = test::temp_dir("resume-" + GetParam());
  auto loss = test::make_loss("cross-entropy");
  TrainPlan p = plan_with(3, 8);
  p.optimizer = GetParam();
  p.lr = GetParam() == "sgd" ? 0.05 : 0.01;

  auto uninterrupted = small_model();
  TrainOutputs full{dir / "full.train.pt", dir / "full_log.csv"};
  train_model(*uninterrupted, *loss, inputs_of(small_data()), p, 5, at::kCPU, full);

  // Stop after one epoch (a constant schedule is the same whatever the total), then
  // resume in a fresh model for the remaining two.
  auto first = small_model();
  TrainPlan one = p;
  one.epochs = 1;
  TrainOutputs part{dir / "part.train.pt", dir / "part_log.csv"};
  train_model(*first, *loss, inputs_of(small_data()), one, 5, at::kCPU, part);
  at::manual_seed(12345);  // the state must restore the generator, not rely on it
  auto resumed = small_model();
  TrainPlan rest = p;
  rest.resume = part.state_file;
  const TrainResult r = train_model(*resumed, *loss, inputs_of(small_data()), rest, 5, at::kCPU, part);
  EXPECT_EQ(r.first_epoch, 1);
  EXPECT_TRUE(same_state(*uninterrupted, *resumed));
  // The log holds every epoch, also across the resume.
  const std::string log = test::read_text(part.log_csv);
  EXPECT_NE(log.find("epoch,loss,accuracy,lr,seconds\n1,"), std::string::npos) << log;
  EXPECT_NE(log.find("\n3,"), std::string::npos) << log;
  // The state is a PyTorch file whose model entries are the model's state dict.
  const TensorDict state = io::load_state_dict(part.state_file);
  EXPECT_EQ(state.at("progress.epoch").item<std::int64_t>(), 3);
  EXPECT_TRUE(at::equal(state.at("model.fc.weight"), resumed->state_dict().at("fc.weight")));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, TrainerResume, ::testing::Values("sgd", "adam", "adamw"));

TEST(Trainer, ResumeRefusesAnotherOptimizerOrAForeignFile) {
  const auto dir = test::temp_dir("resume-bad");
  auto loss = test::make_loss("cross-entropy");
  auto model = small_model();
  TrainOutputs out{dir / "m.train.pt", {}};
  train_model(*model, *loss, inputs_of(small_data()), plan_with(1, 8), 0, at::kCPU, out);
  TrainPlan p = plan_with(2, 8);
  p.optimizer = "adam";
  p.resume = out.state_file;
  try {
    train_model(*model, *loss, inputs_of(small_data()), p, 0, at::kCPU, {});
    FAIL() << "resumed with another optimizer";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer 'sgd'"), std::string::npos) << e.what();
  }
  io::save_tensor_dict(dir / "foreign.pt", model->state_dict());
  p.optimizer = "sgd";
  p.resume = dir / "foreign.pt";
  EXPECT_THROW(train_model(*model, *loss, inputs_of(small_data()), p, 0, at::kCPU, {}), StateError);
}

TEST(Trainer, OutliersAreMixedIntoEveryBatchWithLabelMinusOne) {
  auto model = small_model();
  RecordingLoss loss(test::make_loss("cross-entropy"));
  TrainPlan p = plan_with(2, 8);
  p.outlier_batch_size = 3;
  TrainInputs in = inputs_of(small_data(24));
  in.outliers = small_data(5, 9);  // fewer than one epoch needs: the stream starts over
  train_model(*model, loss, in, p, 0, at::kCPU, {});
  ASSERT_EQ(loss.seen.size(), 6u);
  for (const auto& t : loss.seen) {
    ASSERT_EQ(t.size(0), 11);
    EXPECT_TRUE((t.slice(0, 0, 8) >= 0).all().item<bool>());
    EXPECT_TRUE((t.slice(0, 8) == -1).all().item<bool>());
  }
}

TEST(Trainer, OutliersOfAnotherShapeAreRefused) {
  auto model = small_model();
  auto loss = test::make_loss("cross-entropy");
  TrainInputs in = inputs_of(small_data());
  in.outliers = std::make_shared<TensorDataset>(at::randn({4, 1, 6, 6}), at::zeros({4}, at::kLong));
  EXPECT_THROW(train_model(*model, *loss, in, plan_with(1, 8), 0, at::kCPU, {}), ShapeError);
}

// Returns NaN from its second batch on.
class NanLoss final : public Loss {
 public:
  explicit NanLoss(std::shared_ptr<Loss> inner) : inner_(std::move(inner)) {}
  at::Tensor forward(Views& views, const at::Tensor& targets) override {
    at::Tensor v = inner_->forward(views, targets);
    return ++calls >= 2 ? v * std::numeric_limits<float>::quiet_NaN() : v;
  }
  int calls = 0;

 private:
  std::shared_ptr<Loss> inner_;
};

TEST(Trainer, NonFiniteLossStopsNamingEpochAndBatch) {
  auto model = small_model();
  NanLoss loss(test::make_loss("cross-entropy"));
  try {
    train_model(*model, loss, inputs_of(small_data(16)), plan_with(1, 4), 0, at::kCPU, {});
    FAIL() << "trained on with a NaN loss";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("epoch 1, batch 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nan"), std::string::npos) << e.what();
  }
  EXPECT_EQ(loss.calls, 2);
}

TEST(Trainer, BadTargetsNameTheLossAndTheBatch) {
  auto model = small_model();
  auto loss = test::make_loss("cross-entropy");
  auto data = std::make_shared<TensorDataset>(at::randn({8, 1, 8, 8}), at::full({8}, 7, at::kLong));
  try {
    train_model(*model, *loss, inputs_of(data), plan_with(1, 8), 0, at::kCPU, {});
    FAIL() << "trained with class 7 of 3";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cross-entropy"), std::string::npos) << m;
    EXPECT_NE(m.find("epoch 1, batch 1"), std::string::npos) << m;
  }
}

TEST(Trainer, TrainingStatePathSitsBesideTheCheckpoint) {
  EXPECT_EQ(training_state_path("out/model.pt"), std::filesystem::path("out/model.train.pt"));
  EXPECT_EQ(training_state_path("weights"), std::filesystem::path("weights.train.pt"));
}

}  // namespace
}  // namespace ood::core
