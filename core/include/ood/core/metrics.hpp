#pragma once
// OOD detection metrics: AUROC, AUPR-IN, AUPR-OUT and FPR95TPR, the four numbers
// pytorch-ood's `OODMetrics` reports.
//
// Conventions (pytorch-ood's): a label < 0 marks an OOD sample, a label >= 0 an IN
// sample; a larger score means "more OOD". OOD is the positive class.
//
// Definitions. Let P = #OOD, N = #IN, and let v_1 > v_2 > ... > v_m be the distinct
// score values. All samples with the same score form ONE curve point (ties are grouped
// exactly like scikit-learn's `_binary_clf_curve`). For the threshold v_k:
//   TP_k = #OOD with score >= v_k,  FP_k = #IN with score >= v_k,  TP_0 = FP_0 = 0.
//   * AUROC    = trapezoid area under (FPR, TPR) = (FP_k / N, TP_k / P), k = 0..m
//              = P(s_ood > s_in) + 1/2 P(s_ood == s_in)   (scikit-learn roc_auc_score)
//   * AUPR-OUT = trapezoid area under the precision/recall curve with OOD positive:
//              points (recall, precision) = (TP_k / P, TP_k / (TP_k + FP_k)), k = 1..m,
//              plus the end point (recall 0, precision 1)
//              (scikit-learn `auc(recall, precision)` of `precision_recall_curve`)
//   * AUPR-IN  = the same with IN as the positive class and the scores negated
//              (thresholds ascending: points (N - FP_{k-1}, P - TP_{k-1}) as counts).
//   * FPR95TPR = FP_k / N at the first k (thresholds descending) with TPR_k >= 0.95,
//              decided exactly (20 TP_k >= 19 P), so TPR = 19/20 reaches 0.95.
// All values are fractions in [0, 1].
//
// Differences from pytorch-ood 0.2.0 (on purpose, see tests/fixtures/reference/POLICY.md):
//   * No sigmoid is applied to the scores. torchmetrics squashes every score through a
//     float32 sigmoid whenever one lies outside [0, 1]; that saturates beyond |s| ~ 17
//     and merges informative scores into ties (a perfectly separating set in [20, 65]
//     gets AUROC 0.5 there). The metrics are rank statistics, so ood uses raw scores.
//   * Counts are exact integers and areas double precision (torchmetrics: float32).
//   * Integer scores are accepted (converted to double, so integers beyond 2^53 in
//     magnitude may merge): pytorch-ood refuses them, but a ranking needs no floats.
//   * In segmentation mode a void label of 0 removes label-0 pixels (pytorch-ood's
//     `if self.void_label:` silently ignores void label 0).
//   * Segmentation inputs need at least 2 dims ([B, ...]); pytorch-ood asserts 3.
//     An image without IN or OOD pixels is reported by update() (pytorch-ood: compute()).
//
// Cost: the scores become order-preserving integer keys, one array per class; compute()
// radix-sorts a copy of each (a constant number of linear passes, no comparisons) and
// accumulates all four values in ONE merging pass over the two sorted arrays, without
// building any curve. Time O(n), extra memory about one copy of the keys; measured
// against std::sort of the same floats by bench/bench_metrics.cpp.
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ood {

struct OODMetricValues {
  double auroc = 0.0;
  double aupr_in = 0.0;
  double aupr_out = 0.0;
  double fpr95tpr = 0.0;
};

/// The values under the names pytorch-ood prints: "AUROC", "AUPR-IN", "AUPR-OUT",
/// "FPR95TPR" (in that order).
std::vector<std::pair<std::string, double>> as_named(const OODMetricValues& values);

/// One-shot metrics of a flat score/label set (classification). Throws
/// ood::InvalidArgument on size mismatch, empty input, a non-finite score, or when
/// IN or OOD samples are missing.
OODMetricValues compute_ood_metrics(std::span<const float> scores, std::span<const int64_t> labels);
OODMetricValues compute_ood_metrics(std::span<const double> scores, std::span<const int64_t> labels);
/// Same as OODMetrics(Classification): update(scores, labels); compute().
OODMetricValues compute_ood_metrics(const at::Tensor& scores, const at::Tensor& labels);

namespace detail {
// std::allocator that leaves trivially constructible elements uninitialised on
// resize(): update() sizes the key buffers for the worst case and shrinks them after,
// which would otherwise zero-fill memory that is overwritten right away.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using KeyVector = std::vector<T, UninitAllocator<T>>;
}  // namespace detail

/// Accumulating metrics, like pytorch-ood's `OODMetrics`: call update() per batch,
/// compute() at the end.
///
/// Classification: every update() input is flattened; compute() evaluates all samples
/// accumulated so far as one set.
/// Segmentation: inputs are [B, ...]; each image (first dim) is evaluated on its own
/// after removing the pixels whose label equals `void_label` (when set, 0 included),
/// and compute() returns the mean of the per-image values. Every image needs IN and
/// OOD pixels after void removal.
///
/// update() validates immediately (shapes, label dtype, finite scores, and in
/// segmentation mode each image's classes) and leaves the object unchanged when it
/// throws ood::InvalidArgument.
class OODMetrics {
 public:
  enum class Mode { Classification, Segmentation };

  /// "classification" or "segmentation" (pytorch-ood's spelling); throws
  /// ood::InvalidArgument otherwise.
  static Mode parse_mode(std::string_view name);

  explicit OODMetrics(Mode mode = Mode::Classification, std::optional<int64_t> void_label = std::nullopt);

  /// scores: any floating dtype or any integer dtype; labels: any integer dtype
  /// (not bool), same shape as scores. Tensors on another device are copied to CPU.
  void update(const at::Tensor& scores, const at::Tensor& labels);

  /// Throws ood::InvalidArgument when nothing was accumulated or (classification)
  /// when IN or OOD samples are missing.
  OODMetricValues compute() const;

  /// Segmentation mode: the values of each image seen so far, in update() order.
  const std::vector<OODMetricValues>& per_image() const { return images_; }

  void reset();

  Mode mode() const { return mode_; }
  std::optional<int64_t> void_label() const { return void_label_; }

 private:
  // Scores are kept as order-preserving unsigned keys, one vector per class. Scores
  // that float32 holds exactly (float16, bfloat16, float32) use 32-bit keys; the first
  // float64 or integer input widens everything to 64-bit keys.
  void widen();

  Mode mode_;
  std::optional<int64_t> void_label_;
  bool wide_ = false;
  detail::KeyVector<uint32_t> in32_, ood32_;
  detail::KeyVector<uint64_t> in64_, ood64_;
  std::vector<OODMetricValues> images_;
};

}  // namespace ood
