#pragma once
// Batches from a dataset, prepared by worker threads while the model runs.
//
// Order is deterministic: without shuffling batches come in index order; with
// shuffling the permutation depends only on (seed, epoch). Random augmentations draw
// from a generator seeded by (seed, epoch, sample index), so the same samples come
// out whatever the number of workers or the thread timing.
#include <ATen/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "ood/augmentation.hpp"
#include "ood/dataset.hpp"

namespace ood::core {

struct Batch {
  at::Tensor inputs;   // [B, ...]
  at::Tensor targets;  // [B] labels (or [B, ...] label maps)
  std::vector<std::int64_t> indices;  // dataset indices of the samples
  std::int64_t number = 0;            // position of the batch in this pass
};

struct LoaderOptions {
  std::int64_t batch_size = 128;
  bool shuffle = false;
  bool drop_last = false;
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
  /// 0 = prepare batches in the consuming thread.
  std::int64_t workers = 2;
  /// Batches prepared ahead of the consumer (per worker).
  std::int64_t prefetch = 2;
  /// Use only the first N samples (after shuffling), 0 = all.
  std::int64_t max_samples = 0;
  /// Stop after N batches, 0 = all.
  std::int64_t max_batches = 0;
  /// Names the dataset in error messages ("/data/in").
  std::string name;
};

/// Seed of the generator that augments sample `index` in `epoch`.
std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index);

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset,
             std::vector<std::shared_ptr<const Augmentation>> transforms, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// How many batches a loader with `options` yields over `dataset_size` samples.
  static std::int64_t count_batches(std::int64_t dataset_size, const LoaderOptions& options);

  std::int64_t num_batches() const { return num_batches_; }
  std::int64_t num_samples() const { return static_cast<std::int64_t>(order_.size()); }
  /// The next batch in order, or nothing at the end. Rethrows a worker's error
  /// (with the dataset name and sample index).
  std::optional<Batch> next();

 private:
  Batch make_batch(std::int64_t number) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  std::vector<std::shared_ptr<const Augmentation>> transforms_;
  LoaderOptions options_;
  std::vector<std::int64_t> order_;
  std::int64_t num_batches_ = 0;

  std::int64_t next_to_consume_ = 0;
  std::int64_t next_to_claim_ = 0;
  bool stopping_ = false;
  std::map<std::int64_t, Batch> ready_;
  std::map<std::int64_t, std::exception_ptr> failed_;
  std::mutex mutex_;
  std::condition_variable produced_;
  std::condition_variable consumed_;
  std::vector<std::thread> workers_;
};

}  // namespace ood::core
