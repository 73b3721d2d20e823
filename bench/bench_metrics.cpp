// Times OODMetrics on 10 million samples against std::sort of the same 10 million
// float32 scores, measured in the same run, best of 3 each:
//   metrics_10M_s = update() + compute() (key building, finiteness check, sort, pass)
//   compute_10M_s = compute() alone
//   sort_10M_s    = std::sort of a copy (the copy is made outside the timing)
// Data: seeded; 30% OOD; scores are float32 sigmoids of N(0,1) (IN) / N(1,1) (OOD)
// logits, like maximum-softmax scores: float32 rounding near 1 makes real ties.
#include <ATen/ops/empty.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "ood/core/metrics.hpp"

namespace {

// Best wall time of `work` over 3 runs; `setup` runs before each, untimed.
template <class Setup, class Work>
double best_of_3(Setup&& setup, Work&& work) {
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    setup();
    const auto t0 = std::chrono::steady_clock::now();
    work();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  constexpr int64_t n = 10'000'000;
  at::Tensor scores = at::empty({n}, at::kFloat);
  at::Tensor labels = at::empty({n}, at::kLong);
  float* s = scores.data_ptr<float>();
  int64_t* l = labels.data_ptr<int64_t>();
  std::mt19937_64 rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int64_t k = 0; k < n; ++k) {
    const bool ood = unit(rng) < 0.3f;
    const float logit = 2.0f * (normal(rng) + (ood ? 1.0f : 0.0f));
    s[k] = 1.0f / (1.0f + std::exp(-logit));
    l[k] = ood ? -1 : static_cast<int64_t>(rng() % 10);
  }
  std::vector<float> sorted(s, s + n);
  std::sort(sorted.begin(), sorted.end());
  const int64_t distinct = std::unique(sorted.begin(), sorted.end()) - sorted.begin();

  ood::OODMetricValues v;
  const double metrics_s = best_of_3([] {},
                                     [&] {
                                       ood::OODMetrics m;
                                       m.update(scores, labels);
                                       v = m.compute();
                                     });
  ood::OODMetrics acc;
  acc.update(scores, labels);
  const double compute_s = best_of_3([] {}, [&] { v = acc.compute(); });

  std::vector<float> copy;
  const double sort_s = best_of_3([&] { copy.assign(s, s + n); }, [&] { std::sort(copy.begin(), copy.end()); });

  std::printf("metrics_10M_s=%.3f sort_10M_s=%.3f ratio=%.3f compute_10M_s=%.3f compute_ratio=%.3f\n", metrics_s,
              sort_s, metrics_s / sort_s, compute_s, compute_s / sort_s);
  std::printf("distinct_scores=%lld AUROC=%.6f AUPR-IN=%.6f AUPR-OUT=%.6f FPR95TPR=%.6f\n",
              static_cast<long long>(distinct), v.auroc, v.aupr_in, v.aupr_out, v.fpr95tpr);
  return 0;
}
