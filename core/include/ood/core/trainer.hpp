#pragma once
// The training stage: a loss component (with learnable parts of its own), SGD (with
// (Nesterov) momentum), Adam or AdamW with weight decay, a constant, step or cosine
// schedule after an optional linear warm-up, an auxiliary outlier set mixed into every
// batch with label -1, seeded data order and augmentations, a training state written
// every N epochs that `resume` continues exactly, and a per-epoch log.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ood/augmentation.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/dataset.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"
#include "ood/tensor_dict.hpp"

namespace ood::core {

struct TrainResult {
  std::int64_t steps = 0;           // optimiser steps in total, earlier (resumed) ones included
  std::int64_t first_epoch = 0;     // 0, or the epoch a resumed run started at
  double last_epoch_loss = 0;      // mean loss over the last epoch
  double last_epoch_accuracy = 0;  // on samples with labels >= 0
  double seconds = 0;
};

/// What the training stage reads.
struct TrainInputs {
  std::shared_ptr<const Dataset> data;
  std::vector<std::shared_ptr<const Augmentation>> transforms;
  std::shared_ptr<const Dataset> outliers;  // null: no auxiliary outliers
  std::vector<std::shared_ptr<const Augmentation>> outlier_transforms;
  std::string loss_plugin;                  // for messages and the state's metadata
};

/// Where the training stage writes while it runs (each file atomically).
struct TrainOutputs {
  /// The training state (model, loss, optimiser, progress, RNG), after every
  /// `checkpoint_every` epochs and after the last one; `resume` reads it.
  std::filesystem::path state_file;
  /// epoch,loss,accuracy,lr,seconds; rewritten after every epoch.
  std::filesystem::path log_csv;
};

/// The training state file next to a model checkpoint: "model.pt" -> "model.train.pt".
std::filesystem::path training_state_path(const std::filesystem::path& checkpoint);

/// Learning rate at `step` (0-based) of `total_steps` for a plan's schedule and warm-up;
/// `steps_per_epoch` converts the warm-up and step schedule from epochs to steps.
double learning_rate(const TrainPlan& plan, std::int64_t step, std::int64_t total_steps,
                     std::int64_t steps_per_epoch);

TrainResult train_model(Model& model, Loss& loss, const TrainInputs& inputs, const TrainPlan& plan,
                        std::uint64_t seed, at::Device device, const TrainOutputs& outputs);

}  // namespace ood::core
