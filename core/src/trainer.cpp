#include "ood/core/trainer.hpp"

#include <torch/optim/sgd.h>

#include <chrono>
#include <cmath>

#include <spdlog/spdlog.h>

#include "ood/core/data_loader.hpp"
#include "ood/core/progress.hpp"
#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::core {

double learning_rate(const TrainPlan& plan, std::int64_t step, std::int64_t total_steps,
                     std::int64_t epoch) {
  if (plan.schedule == "cosine") {
    const double progress = total_steps > 0 ? static_cast<double>(step) / static_cast<double>(total_steps) : 0.0;
    return plan.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  if (plan.schedule == "step")
    return plan.lr * std::pow(plan.gamma, static_cast<double>(epoch / plan.step_size));
  return plan.lr;
}

TrainResult train_model(Model& model, Loss& loss, std::shared_ptr<const Dataset> data,
                        std::vector<std::shared_ptr<const Augmentation>> transforms,
                        const TrainPlan& plan, std::uint64_t seed, at::Device device) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> params = model.parameters();
  for (const at::Tensor& p : loss.parameters()) params.push_back(p);
  if (params.empty()) throw Error("/train: the model has no trainable parameters");

  torch::optim::SGD optimizer(
      params, torch::optim::SGDOptions(plan.lr)
                  .momentum(plan.momentum)
                  .weight_decay(plan.weight_decay)
                  .nesterov(plan.nesterov && plan.momentum > 0));

  LoaderOptions lo;
  lo.batch_size = plan.batch_size;
  lo.shuffle = true;
  lo.drop_last = data->size() > plan.batch_size;  // no tiny last batch for batch norm
  lo.seed = seed;
  lo.workers = plan.workers;
  lo.max_batches = plan.max_batches;
  lo.name = "/train/data";

  // Batches per epoch, for the cosine schedule's length.
  const std::int64_t per_epoch = DataLoader::count_batches(data->size(), lo);
  if (per_epoch == 0) throw Error("/train/data: no training batches (is the dataset empty?)");
  const std::int64_t total = per_epoch * plan.epochs;

  TrainResult result;
  model.set_mode(ModelMode::Train);
  for (std::int64_t epoch = 0; epoch < plan.epochs; ++epoch) {
    lo.epoch = epoch;
    DataLoader loader(data, transforms, lo);
    Progress progress("train epoch " + std::to_string(epoch + 1) + "/" + std::to_string(plan.epochs),
                      loader.num_batches());
    double loss_sum = 0;
    std::int64_t batches = 0, correct = 0, labelled = 0;
    while (auto batch = loader.next()) {
      const double lr = learning_rate(plan, result.steps, total, epoch);
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);

      const at::Tensor targets = batch->targets.to(device);
      Views views(model, batch->inputs.to(device), /*track_gradients=*/true);
      at::Tensor value = loss.forward(views, targets);
      if (!value.defined() || value.numel() != 1)
        throw Error("/train/loss: the loss returned " + std::to_string(value.numel()) +
                    " values; training needs one (use reduction \"mean\" or \"sum\")");
      if (!std::isfinite(value.item<double>()))
        throw Error("/train: the loss became " + std::to_string(value.item<double>()) + " at step " +
                    std::to_string(result.steps) + " (learning rate too high?)");
      optimizer.zero_grad();
      value.backward();
      optimizer.step();

      {
        at::NoGradGuard no_grad;
        const at::Tensor known = targets >= 0;
        const at::Tensor predicted = views.logits().argmax(1);
        correct += (predicted.eq(targets) & known).sum().item<std::int64_t>();
        labelled += known.sum().item<std::int64_t>();
      }
      loss_sum += value.item<double>();
      ++batches;
      ++result.steps;
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4f", loss_sum / static_cast<double>(batches));
      progress.advance(1, status);
    }
    progress.finish();
    result.last_epoch_loss = batches ? loss_sum / static_cast<double>(batches) : 0.0;
    result.last_epoch_accuracy =
        labelled ? static_cast<double>(correct) / static_cast<double>(labelled) : 0.0;
    spdlog::info("epoch {}/{}: loss {:.4f}, train accuracy {:.2f}%", epoch + 1, plan.epochs,
                 result.last_epoch_loss, 100.0 * result.last_epoch_accuracy);
  }
  model.set_mode(ModelMode::Eval);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace ood::core
