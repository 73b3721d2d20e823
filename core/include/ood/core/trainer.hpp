#pragma once
// Minimal supervised training: a loss component, SGD with (Nesterov) momentum and
// weight decay, a cosine (per batch) or step (per epoch) schedule, seeded data order
// and augmentations, and a checkpoint PyTorch can load.
#include <filesystem>
#include <memory>
#include <vector>

#include "ood/augmentation.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/dataset.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"

namespace ood::core {

struct TrainResult {
  std::int64_t steps = 0;
  double last_epoch_loss = 0;      // mean loss over the last epoch
  double last_epoch_accuracy = 0;  // on samples with labels >= 0
  double seconds = 0;
};

/// Learning rate at `step` (0-based) of `total_steps` for a plan's schedule.
double learning_rate(const TrainPlan& plan, std::int64_t step, std::int64_t total_steps,
                     std::int64_t epoch);

TrainResult train_model(Model& model, Loss& loss, std::shared_ptr<const Dataset> data,
                        std::vector<std::shared_ptr<const Augmentation>> transforms,
                        const TrainPlan& plan, std::uint64_t seed, at::Device device);

}  // namespace ood::core
