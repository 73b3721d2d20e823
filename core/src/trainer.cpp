#include "ood/core/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ood/core/data_loader.hpp"
#include "ood/core/progress.hpp"
#include "ood/core/results.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::core {

namespace fs = std::filesystem;

namespace {

constexpr int kTrainingStateFormat = 1;
constexpr const char* kMetaKey = "_ood_training_state";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainPlan& plan, std::vector<at::Tensor> params) {
  if (plan.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(plan.lr)
                    .betas({plan.betas.at(0), plan.betas.at(1)})
                    .weight_decay(plan.weight_decay));
  if (plan.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(plan.lr)
                    .betas({plan.betas.at(0), plan.betas.at(1)})
                    .weight_decay(plan.weight_decay));
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(plan.lr)
                                                         .momentum(plan.momentum)
                                                         .weight_decay(plan.weight_decay)
                                                         .nesterov(plan.nesterov && plan.momentum > 0));
}

// LibTorch keys an optimiser's per-parameter state by the address of the tensor.
std::string state_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

// Adam and AdamW keep the same fields in two unrelated classes: each is read as itself
// (casting an AdamWParamState to AdamParamState is undefined behaviour, UBSan says so).
template <typename AdamState>
void save_adam_state(const torch::optim::OptimizerParamState& base, const std::string& prefix, TensorDict& out) {
  const auto& s = static_cast<const AdamState&>(base);
  out.set(prefix + "step", at::scalar_tensor(s.step(), at::kLong));
  out.set(prefix + "exp_avg", s.exp_avg());
  out.set(prefix + "exp_avg_sq", s.exp_avg_sq());
}

void save_optimizer(torch::optim::Optimizer& optimizer, const std::string& kind,
                    const std::vector<at::Tensor>& params, TensorDict& out) {
  auto& state = optimizer.state();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto it = state.find(state_key(params[i]));
    if (it == state.end()) continue;
    const std::string prefix = "optimizer." + std::to_string(i) + ".";
    if (kind == "sgd") {
      const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
      if (s.momentum_buffer().defined()) out.set(prefix + "momentum_buffer", s.momentum_buffer());
    } else if (kind == "adam") {
      save_adam_state<torch::optim::AdamParamState>(*it->second, prefix, out);
    } else {
      save_adam_state<torch::optim::AdamWParamState>(*it->second, prefix, out);
    }
  }
}

void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& kind, const std::vector<at::Tensor>& params,
                    const TensorDict& in, const std::string& file) {
  auto& state = optimizer.state();
  auto get = [&](const std::string& key, const at::Tensor& like) {
    const at::Tensor& t = in.at(key);
    if (!t.sizes().equals(like.sizes()))
      throw StateError(file + ": optimiser entry '" + key + "' has another shape than its parameter");
    return t.to(like.device(), like.scalar_type()).clone();
  };
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = "optimizer." + std::to_string(i) + ".";
    if (kind == "sgd") {
      if (!in.contains(prefix + "momentum_buffer")) continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(get(prefix + "momentum_buffer", params[i]));
      state[state_key(params[i])] = std::move(s);
    } else {
      if (!in.contains(prefix + "step")) continue;
      auto fill = [&](auto s) -> std::unique_ptr<torch::optim::OptimizerParamState> {
        s->step(in.at(prefix + "step").item<std::int64_t>());
        s->exp_avg(get(prefix + "exp_avg", params[i]));
        s->exp_avg_sq(get(prefix + "exp_avg_sq", params[i]));
        return s;
      };
      state[state_key(params[i])] = kind == "adam" ? fill(std::make_unique<torch::optim::AdamParamState>())
                                                   : fill(std::make_unique<torch::optim::AdamWParamState>());
    }
  }
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

at::Tensor text_tensor(const std::string& text) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(text.size())}, at::kByte);
  std::memcpy(t.data_ptr<std::uint8_t>(), text.data(), text.size());
  return t;
}

std::string tensor_text(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  if (c.scalar_type() != at::kByte || c.dim() != 1) throw StateError("metadata is not a uint8 vector");
  return std::string(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()), static_cast<std::size_t>(c.numel()));
}

struct LogRow {
  double epoch, loss, accuracy, lr, seconds;
};

std::string log_csv(const std::vector<LogRow>& rows) {
  std::ostringstream out;
  out.precision(17);
  out << "epoch,loss,accuracy,lr,seconds\n";
  for (const auto& r : rows)
    out << static_cast<std::int64_t>(r.epoch) << ',' << r.loss << ',' << r.accuracy << ',' << r.lr << ','
        << r.seconds << '\n';
  return out.str();
}

// The auxiliary outliers of one training epoch: a shuffled stream that starts anew
// (another permutation) when it runs out, so every batch gets its outliers. Each
// epoch's stream depends only on (seed, epoch): a resumed run draws the same ones.
class OutlierStream {
 public:
  OutlierStream(const TrainInputs& inputs, const TrainPlan& plan, std::uint64_t seed, std::int64_t epoch)
      : inputs_(inputs), plan_(plan), seed_(seed ^ 0x9e3779b97f4a7c15ULL), epoch_(epoch) {}

  Batch next() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!loader_) {
        LoaderOptions lo;
        lo.batch_size = plan_.outlier_batch_size > 0 ? plan_.outlier_batch_size : plan_.batch_size;
        lo.shuffle = true;
        // Every batch gets the same number of outliers, unless the set is smaller.
        lo.drop_last = inputs_.outliers->size() >= lo.batch_size;
        lo.seed = seed_;
        lo.epoch = epoch_ * 1000003 + cycle_++;
        lo.workers = plan_.workers;
        lo.name = "/train/outliers";
        loader_ = std::make_unique<DataLoader>(inputs_.outliers, inputs_.outlier_transforms, lo);
      }
      if (auto batch = loader_->next()) return std::move(*batch);
      loader_.reset();
    }
    throw Error("/train/outliers: the outlier dataset is empty");
  }

 private:
  const TrainInputs& inputs_;
  const TrainPlan& plan_;
  std::uint64_t seed_;
  std::int64_t epoch_;
  std::int64_t cycle_ = 0;
  std::unique_ptr<DataLoader> loader_;
};

}  // namespace

fs::path training_state_path(const fs::path& checkpoint) {
  fs::path p = checkpoint;
  const std::string stem = p.extension() == ".pt" ? p.stem().string() : p.filename().string();
  return p.replace_filename(stem + ".train.pt");
}

double learning_rate(const TrainPlan& plan, std::int64_t step, std::int64_t total_steps,
                     std::int64_t steps_per_epoch) {
  const std::int64_t warmup = plan.warmup_epochs * steps_per_epoch;
  if (step < warmup) return plan.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  // After the warm-up the schedule runs as if training started there.
  const std::int64_t s = step - warmup, total = total_steps - warmup;
  if (plan.schedule == "cosine") {
    const double progress = total > 0 ? static_cast<double>(s) / static_cast<double>(total) : 0.0;
    return plan.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  if (plan.schedule == "step") {
    const std::int64_t epoch = steps_per_epoch > 0 ? s / steps_per_epoch : 0;
    return plan.lr * std::pow(plan.gamma, static_cast<double>(epoch / plan.step_size));
  }
  return plan.lr;
}

TrainResult train_model(Model& model, Loss& loss, const TrainInputs& inputs, const TrainPlan& plan,
                        std::uint64_t seed, at::Device device, const TrainOutputs& outputs) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> params = model.parameters();
  const std::size_t model_params = params.size();
  for (const at::Tensor& p : loss.parameters()) params.push_back(p);
  if (params.empty()) throw Error("/train: the model has no trainable parameters");
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(plan, params);

  LoaderOptions lo;
  lo.batch_size = plan.batch_size;
  lo.shuffle = true;
  lo.drop_last = inputs.data->size() > plan.batch_size;  // no tiny last batch for batch norm
  lo.seed = seed;
  lo.workers = plan.workers;
  lo.max_batches = plan.max_batches;
  lo.name = "/train/data";

  // Batches per epoch, for the schedule's length.
  const std::int64_t per_epoch = DataLoader::count_batches(inputs.data->size(), lo);
  if (per_epoch == 0) throw Error("/train/data: no training batches (is the dataset empty?)");
  const std::int64_t total = per_epoch * plan.epochs;

  TrainResult result;
  std::vector<LogRow> log;
  double seconds_before = 0;
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle: shares the global state

  // Resume: everything an uninterrupted run would have at this epoch boundary.
  if (!plan.resume.empty()) {
    const std::string file = plan.resume.string();
    TensorDict state;
    try {
      state = io::load_state_dict(plan.resume);
      if (!state.contains(kMetaKey)) throw StateError("not a training state written by ood (no '" + std::string(kMetaKey) + "')");
      const auto meta = nlohmann::json::parse(tensor_text(state.at(kMetaKey)));
      if (meta.value("format", 0) != kTrainingStateFormat)
        throw StateError("training state format " + meta.value("format", nlohmann::json()).dump() + ", this ood reads " +
                         std::to_string(kTrainingStateFormat));
      if (meta.value("optimizer", "") != plan.optimizer)
        throw StateError("written with optimizer '" + meta.value("optimizer", "") + "', the pipeline uses '" +
                         plan.optimizer + "'");
      if (meta.value("loss", "") != inputs.loss_plugin)
        throw StateError("written with loss '" + meta.value("loss", "") + "', the pipeline uses '" +
                         inputs.loss_plugin + "'");
      TensorDict model_state, loss_state;
      for (const auto& [key, tensor] : state) {
        if (key.rfind("model.", 0) == 0) model_state.set(key.substr(6), tensor);
        if (key.rfind("loss.", 0) == 0) loss_state.set(key.substr(5), tensor);
      }
      model.load_state_dict(model_state);
      loss.load_state(loss_state);
      load_optimizer(*optimizer, plan.optimizer, params, state, file);
      result.first_epoch = state.at("progress.epoch").item<std::int64_t>();
      result.steps = state.at("progress.step").item<std::int64_t>();
      const at::Tensor rows = state.at("progress.log").to(at::kDouble).contiguous();
      for (std::int64_t r = 0; r < rows.size(0); ++r) {
        const double* v = rows[r].data_ptr<double>();
        log.push_back({v[0], v[1], v[2], v[3], v[4]});
        seconds_before += v[4];
      }
      generator.set_state(state.at("rng.cpu"));
    } catch (const std::exception& e) {
      throw StateError("/train/resume: " + file + ": " + e.what());
    }
    if (result.first_epoch >= plan.epochs)
      spdlog::warn("/train/resume: {} already holds {} epochs; nothing left to train", file, result.first_epoch);
    else
      spdlog::info("resuming at epoch {}/{} from {}", result.first_epoch + 1, plan.epochs, file);
  }

  auto write_state = [&](std::int64_t epochs_done) {
    TensorDict state;
    const nlohmann::json meta = {{"format", kTrainingStateFormat},
                                 {"optimizer", plan.optimizer},
                                 {"loss", inputs.loss_plugin},
                                 {"epochs", plan.epochs}};
    state.set(kMetaKey, text_tensor(meta.dump()));
    for (const auto& [key, tensor] : model.state_dict()) state.set("model." + key, tensor);
    for (const auto& [key, tensor] : loss.state()) state.set("loss." + key, tensor);
    save_optimizer(*optimizer, plan.optimizer, params, state);
    state.set("progress.epoch", at::scalar_tensor(epochs_done, at::kLong));
    state.set("progress.step", at::scalar_tensor(result.steps, at::kLong));
    at::Tensor rows = at::empty({static_cast<std::int64_t>(log.size()), 5}, at::kDouble);
    for (std::size_t r = 0; r < log.size(); ++r) {
      const LogRow& l = log[r];
      const double v[5] = {l.epoch, l.loss, l.accuracy, l.lr, l.seconds};
      for (int c = 0; c < 5; ++c) rows[static_cast<std::int64_t>(r)][c] = v[c];
    }
    state.set("progress.log", rows);
    state.set("rng.cpu", generator.get_state());
    io::save_tensor_dict(outputs.state_file, state);
  };

  (void)model_params;
  model.set_mode(ModelMode::Train);
  for (std::int64_t epoch = result.first_epoch; epoch < plan.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    lo.epoch = epoch;
    DataLoader loader(inputs.data, inputs.transforms, lo);
    std::optional<OutlierStream> outliers;
    if (inputs.outliers) outliers.emplace(inputs, plan, seed, epoch);
    Progress progress("train epoch " + std::to_string(epoch + 1) + "/" + std::to_string(plan.epochs),
                      loader.num_batches());
    double loss_sum = 0, lr = plan.lr;
    std::int64_t batches = 0, correct = 0, labelled = 0;
    while (auto batch = loader.next()) {
      lr = learning_rate(plan, result.steps, total, per_epoch);
      set_lr(*optimizer, lr);
      const std::string where = "epoch " + std::to_string(epoch + 1) + ", batch " + std::to_string(batches + 1);

      at::Tensor x = batch->inputs, y = batch->targets;
      if (outliers) {
        Batch extra = outliers->next();
        if (!extra.inputs.sizes().slice(1).equals(x.sizes().slice(1)))
          throw ShapeError("/train/outliers: outlier inputs [" + c10::str(extra.inputs.sizes()) +
                           "] do not fit the training inputs [" + c10::str(x.sizes()) + "] (" + where + ")");
        if (y.dim() != 1)
          throw ShapeError("/train/outliers: outliers need classification targets [N], the training data gives [" +
                           c10::str(y.sizes()) + "]");
        x = at::cat({x, extra.inputs});
        y = at::cat({y.to(at::kLong), at::full({extra.inputs.size(0)}, -1, at::kLong)});
      }
      const at::Tensor targets = y.to(device);
      Views views(model, x.to(device), /*track_gradients=*/true);
      at::Tensor value;
      try {
        value = loss.forward(views, targets);
      } catch (const std::exception& e) {
        throw Error("/train/loss: loss '" + inputs.loss_plugin + "' failed at " + where + ": " + e.what());
      }
      if (!value.defined() || value.numel() != 1)
        throw Error("/train/loss: loss '" + inputs.loss_plugin + "' returned " +
                    std::to_string(value.defined() ? value.numel() : 0) +
                    " values; training needs one (use reduction \"mean\" or \"sum\")");
      const double v = value.item<double>();
      if (!std::isfinite(v))
        throw Error("/train: the loss became " + std::to_string(v) + " at " + where + " (step " +
                    std::to_string(result.steps + 1) + ", learning rate " + std::to_string(lr) +
                    "); training stopped. Lower the learning rate or check the data.");
      optimizer->zero_grad();
      value.backward();
      optimizer->step();

      {
        at::NoGradGuard no_grad;
        if (targets.dim() == 1 && views.logits().dim() == 2) {
          const at::Tensor known = targets >= 0;
          const at::Tensor predicted = views.logits().argmax(1);
          correct += (predicted.eq(targets) & known).sum().item<std::int64_t>();
          labelled += known.sum().item<std::int64_t>();
        }
      }
      loss_sum += v;
      ++batches;
      ++result.steps;
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4f lr %.3g", loss_sum / static_cast<double>(batches), lr);
      progress.advance(1, status);
    }
    progress.finish();
    result.last_epoch_loss = batches ? loss_sum / static_cast<double>(batches) : 0.0;
    result.last_epoch_accuracy = labelled ? static_cast<double>(correct) / static_cast<double>(labelled) : 0.0;
    log.push_back({static_cast<double>(epoch + 1), result.last_epoch_loss, result.last_epoch_accuracy, lr,
                   seconds_since(epoch_start)});
    spdlog::info("epoch {}/{}: loss {:.4f}, train accuracy {:.2f}%", epoch + 1, plan.epochs, result.last_epoch_loss,
                 100.0 * result.last_epoch_accuracy);
    if (!outputs.log_csv.empty()) write_file_atomically(outputs.log_csv, log_csv(log));
    const bool last = epoch + 1 == plan.epochs;
    if (!outputs.state_file.empty() && (last || (plan.checkpoint_every > 0 && (epoch + 1) % plan.checkpoint_every == 0))) {
      model.set_mode(ModelMode::Eval);  // the state holds the same tensors in either mode
      write_state(epoch + 1);
      model.set_mode(ModelMode::Train);
      spdlog::info("training state after epoch {} written to {}", epoch + 1, outputs.state_file.string());
    }
  }
  model.set_mode(ModelMode::Eval);
  result.seconds = seconds_before + seconds_since(start);
  return result;
}

}  // namespace ood::core
