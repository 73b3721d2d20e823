// The data loader: order, seeded shuffling and augmentation, worker threads, errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <atomic>

#include "ood/core/data_loader.hpp"
#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood::core {
namespace {

// Sample i is the scalar image [i] with label i % 3.
class Counting final : public Dataset {
 public:
  explicit Counting(std::int64_t n, std::int64_t fail_at = -1) : n_(n), fail_at_(fail_at) {}
  std::int64_t size() const override { return n_; }
  Sample get(std::int64_t i) const override {
    if (i == fail_at_) throw FileError("broken.png: cannot decode");
    ++reads;
    return {at::full({1, 2, 2}, static_cast<float>(i)), at::scalar_tensor(i % 3, at::kLong)};
  }
  DatasetInfo info() const override { return {}; }
  mutable std::atomic<int> reads{0};

 private:
  std::int64_t n_, fail_at_;
};

// Adds a random number drawn from the sample's generator.
class Jitter final : public Augmentation {
 public:
  Sample apply(Sample s, at::Generator& gen) const override {
    s.input = s.input + static_cast<float>(uniform01(gen));
    return s;
  }
};

std::vector<at::Tensor> drain(DataLoader& loader) {
  std::vector<at::Tensor> out;
  while (auto b = loader.next()) out.push_back(b->inputs);
  return out;
}

LoaderOptions opts(std::int64_t batch, std::int64_t workers, bool shuffle = false) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.shuffle = shuffle;
  o.seed = 7;
  o.name = "/data/test";
  return o;
}

TEST(DataLoader, BatchesInIndexOrder) {
  auto ds = std::make_shared<Counting>(10);
  DataLoader loader(ds, {}, opts(4, 2));
  EXPECT_EQ(loader.num_batches(), 3);
  std::vector<std::int64_t> seen;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->inputs.size(0), static_cast<std::int64_t>(b->indices.size()));
    for (std::size_t k = 0; k < b->indices.size(); ++k) {
      seen.push_back(b->indices[k]);
      EXPECT_EQ(b->inputs[static_cast<long>(k)][0][0][0].item<float>(), static_cast<float>(b->indices[k]));
      EXPECT_EQ(b->targets[static_cast<long>(k)].item<std::int64_t>(), b->indices[k] % 3);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(DataLoader, SameResultWithAnyNumberOfWorkers) {
  auto ds = std::make_shared<Counting>(37);
  std::vector<std::shared_ptr<const Augmentation>> jitter = {std::make_shared<Jitter>()};
  DataLoader serial(ds, jitter, opts(5, 0, true));
  const auto reference = drain(serial);
  for (std::int64_t workers : {1, 2, 4}) {
    DataLoader parallel(ds, jitter, opts(5, workers, true));
    const auto batches = drain(parallel);
    ASSERT_EQ(batches.size(), reference.size());
    for (std::size_t i = 0; i < batches.size(); ++i) EXPECT_TRUE(batches[i].equal(reference[i])) << workers;
  }
}

TEST(DataLoader, ShuffleDependsOnSeedAndEpoch) {
  auto ds = std::make_shared<Counting>(50);
  auto order = [&](std::uint64_t seed, std::int64_t epoch) {
    LoaderOptions o = opts(50, 0, true);
    o.seed = seed;
    o.epoch = epoch;
    DataLoader l(ds, {}, o);
    return l.next()->indices;
  };
  EXPECT_EQ(order(1, 0), order(1, 0));
  EXPECT_NE(order(1, 0), order(2, 0));
  EXPECT_NE(order(1, 0), order(1, 1));
  auto sorted = order(1, 0);
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i);
}

TEST(DataLoader, LimitsAndDropLast) {
  auto ds = std::make_shared<Counting>(10);
  LoaderOptions o = opts(4, 1);
  o.drop_last = true;
  EXPECT_EQ(DataLoader(ds, {}, o).num_batches(), 2);
  o = opts(4, 1);
  o.max_samples = 5;
  DataLoader limited(ds, {}, o);
  EXPECT_EQ(limited.num_samples(), 5);
  EXPECT_EQ(limited.num_batches(), 2);
  o = opts(3, 2);
  o.max_batches = 2;
  DataLoader two(ds, {}, o);
  EXPECT_EQ(drain(two).size(), 2u);
}

TEST(DataLoader, WorkerErrorsNameDatasetAndSample) {
  auto ds = std::make_shared<Counting>(20, 13);
  for (std::int64_t workers : {0, 3}) {
    DataLoader loader(ds, {}, opts(4, workers));
    try {
      drain(loader);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "/data/test: sample 13: broken.png: cannot decode");
    }
  }
}

TEST(DataLoader, StoppingEarlyDoesNotHang) {
  auto ds = std::make_shared<Counting>(1000);
  {
    DataLoader loader(ds, {}, opts(2, 4));
    loader.next();
  }
  // Prefetching is bounded: workers do not read the whole dataset ahead.
  EXPECT_LT(ds->reads.load(), 200);
}

}  // namespace
}  // namespace ood::core
