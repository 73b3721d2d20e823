#include "ood/core/data_loader.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "ood/checks.hpp"
#include "ood/error.hpp"

namespace ood::core {

namespace {
// SplitMix64 finaliser: decorrelates nearby (seed, epoch, index) triples.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  return mix(mix(mix(seed) ^ static_cast<std::uint64_t>(epoch)) ^ static_cast<std::uint64_t>(index));
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset,
                       std::vector<std::shared_ptr<const Augmentation>> transforms,
                       LoaderOptions options)
    : dataset_(std::move(dataset)), transforms_(std::move(transforms)), options_(std::move(options)) {
  if (options_.batch_size < 1) throw InvalidArgument("data loader: batch_size must be >= 1");
  const std::int64_t n = dataset_->size();
  if (n < 0) throw Error(options_.name + ": dataset reports a negative size");
  order_.resize(static_cast<std::size_t>(n));
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) {
    // std::mt19937_64 + a hand-rolled Fisher-Yates: both are specified exactly by the
    // standard, so the order is the same with every standard library.
    std::mt19937_64 rng(mix(options_.seed ^ mix(static_cast<std::uint64_t>(options_.epoch) + 1)));
    for (std::size_t i = order_.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(rng() % i);
      std::swap(order_[i - 1], order_[j]);
    }
  }
  if (options_.max_samples > 0 && options_.max_samples < n)
    order_.resize(static_cast<std::size_t>(options_.max_samples));
  num_batches_ = count_batches(n, options_);

  for (std::int64_t w = 0; w < options_.workers && w < num_batches_; ++w)
    workers_.emplace_back([this] { worker_loop(); });
}

DataLoader::~DataLoader() { stop_workers(); }

std::int64_t DataLoader::count_batches(std::int64_t dataset_size, const LoaderOptions& options) {
  const std::int64_t count =
      options.max_samples > 0 ? std::min(dataset_size, options.max_samples) : dataset_size;
  // Not (count + batch_size - 1) / batch_size: that overflows for batch sizes near
  // INT64_MAX, which mean "one batch".
  std::int64_t batches = count / options.batch_size;
  if (!options.drop_last && count % options.batch_size != 0) ++batches;
  if (options.max_batches > 0) batches = std::min(batches, options.max_batches);
  return batches;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  consumed_.notify_all();
  produced_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

Batch DataLoader::make_batch(std::int64_t number) const {
  // number < num_batches_, so begin < order_.size(); the end is computed without
  // begin + batch_size, which overflows for huge batch sizes.
  const std::int64_t size = static_cast<std::int64_t>(order_.size());
  const std::int64_t begin = number * options_.batch_size;
  const std::int64_t end = begin + std::min(options_.batch_size, size - begin);
  Batch batch;
  batch.number = number;
  std::vector<at::Tensor> inputs, targets;
  inputs.reserve(static_cast<std::size_t>(end - begin));
  targets.reserve(static_cast<std::size_t>(end - begin));
  for (std::int64_t k = begin; k < end; ++k) {
    const std::int64_t index = order_[static_cast<std::size_t>(k)];
    try {
      Sample s = dataset_->get(index);
      if (!transforms_.empty()) {
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
            sample_seed(options_.seed, options_.epoch, index));
        for (const auto& t : transforms_) s = t->apply(std::move(s), gen);
      }
      if (!s.input.defined() || !s.target.defined())
        throw Error("the dataset returned an empty sample");
      if (!inputs.empty() && !s.input.sizes().equals(inputs.front().sizes()))
        throw ShapeError("input shape " + describe_tensor(s.input) + " differs from the batch's first sample " +
                         describe_tensor(inputs.front()) + "; add a resize transform");
      inputs.push_back(std::move(s.input));
      targets.push_back(std::move(s.target));
      batch.indices.push_back(index);
    } catch (const c10::Error& e) {
      throw Error(options_.name + ": sample " + std::to_string(index) + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Error(options_.name + ": sample " + std::to_string(index) + ": " + e.what());
    }
  }
  batch.inputs = at::stack(inputs);
  batch.targets = at::stack(targets);
  // Complex labels would be cut to their real part without a word.
  if (at::isComplexType(batch.targets.scalar_type()))
    throw Error(options_.name + ": sample " + std::to_string(batch.indices.front()) + ": labels are " +
                std::string(c10::toString(batch.targets.scalar_type())) + "; labels must be integers");
  // NaN in the data makes NaN scores; name the set and the sample here, where it is
  // known, rather than let the metrics blame a set later.
  if (batch.inputs.numel() > 0 &&
      (at::isFloatingType(batch.inputs.scalar_type()) || at::isComplexType(batch.inputs.scalar_type()))) {
    const at::Tensor bad = batch.inputs.isnan().reshape({batch.inputs.size(0), -1}).any(1);
    if (bad.any().item<bool>()) {
      const std::int64_t k = bad.to(at::kByte).argmax().item<std::int64_t>();
      throw Error(options_.name + ": sample " + std::to_string(batch.indices[static_cast<std::size_t>(k)]) +
                  ": the input contains NaN");
    }
  }
  return batch;
}

void DataLoader::worker_loop() {
  for (;;) {
    std::int64_t number;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const std::int64_t window =
          std::max<std::int64_t>(1, options_.prefetch) * std::max<std::int64_t>(1, options_.workers);
      consumed_.wait(lock, [&] {
        return stopping_ || next_to_claim_ >= num_batches_ || next_to_claim_ < next_to_consume_ + window;
      });
      if (stopping_ || next_to_claim_ >= num_batches_) return;
      number = next_to_claim_++;
    }
    Batch batch;
    std::exception_ptr error;
    try {
      batch = make_batch(number);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error)
        failed_[number] = error;
      else
        ready_[number] = std::move(batch);
    }
    produced_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (next_to_consume_ >= num_batches_) return std::nullopt;
  const std::int64_t number = next_to_consume_;
  if (workers_.empty()) {
    ++next_to_consume_;
    return make_batch(number);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  produced_.wait(lock, [&] { return ready_.count(number) || failed_.count(number); });
  if (auto f = failed_.find(number); f != failed_.end()) {
    std::exception_ptr error = f->second;
    lock.unlock();
    stop_workers();
    next_to_consume_ = num_batches_;
    std::rethrow_exception(error);
  }
  Batch batch = std::move(ready_[number]);
  ready_.erase(number);
  ++next_to_consume_;
  lock.unlock();
  consumed_.notify_all();
  return batch;
}

}  // namespace ood::core
