#pragma once
// Streaming statistics that fitting detectors share: per-class counts, means and
// scatter matrices accumulated batch by batch in float64 (Mahalanobis, RMD,
// multi-layer Mahalanobis, KL matching, ...), and NumPy's percentile.
//
// Fitting therefore never keeps the fit features: memory is O(K * D + D * D) whatever
// the size of the fitting set.
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ood/export.hpp"

namespace ood {

/// First and (optionally) second moments of features, per class and overall.
///
/// Accumulated about a shift (the mean of the first batch) to avoid the cancellation
/// of "sum z z^T - n mu mu^T" when the features are far from the origin.
class OOD_SDK_API ClassMoments {
 public:
  /// `with_scatter`: also accumulate the D x D scatter (covariances need it).
  explicit ClassMoments(bool with_scatter = true);

  /// Adds one batch: `features` [N, D] floating, `labels` [N] integer. Rows whose label
  /// is negative (OOD samples) are skipped. Throws ood::ShapeError for a wrong shape,
  /// another feature size than earlier batches, or non-finite features.
  void add(const at::Tensor& features, const at::Tensor& labels);

  /// Number of samples added (labels >= 0).
  std::int64_t total() const { return total_; }
  /// 1 + the largest label seen (0 before any sample).
  std::int64_t num_classes() const;
  /// Feature size (0 before any sample).
  std::int64_t dim() const { return dim_; }
  /// Samples per class [K] int64.
  at::Tensor counts() const;
  /// Class means [K, D] float64. Throws ood::StateError naming every class in
  /// 0..K-1 without a sample.
  at::Tensor class_means() const;
  /// Mean of all samples [D] float64.
  at::Tensor mean() const;
  /// Pooled within-class scatter sum_k sum_{i in k} (z_i - mu_k)(z_i - mu_k)^T [D, D].
  at::Tensor within_class_scatter() const;
  /// Scatter about the overall mean sum_i (z_i - mu)(z_i - mu)^T [D, D].
  at::Tensor total_scatter() const;

 private:
  void require_samples(const char* what) const;
  bool with_scatter_;
  std::int64_t dim_ = 0;
  std::int64_t total_ = 0;
  at::Tensor shift_;       // [D] float64
  at::Tensor counts_;      // [K] float64
  at::Tensor sums_;        // [K, D] float64, sums of (z - shift)
  at::Tensor scatter_;     // [D, D] float64, sum (z - shift)(z - shift)^T
};

// ---- class-conditional Gaussians with a shared covariance (float64) ----
// Fitted from ClassMoments and scored with the squared Mahalanobis distance to the class
// means (Mahalanobis, RMD, multi-layer Mahalanobis). `who` names the detector in messages.

/// The class means [K, D] of `moments`. ood::StateError "<who>: the fitting data holds no
/// in-distribution samples" without any, and "<who>: no fitting sample of class ..." when a
/// class has none.
OOD_SDK_API at::Tensor fitted_class_means(const ClassMoments& moments, std::string_view who);

/// Sigma = scatter / (n - 1), symmetrised, + 1e-6 I. ood::StateError for n < 2.
OOD_SDK_API at::Tensor regularised_covariance(const at::Tensor& scatter, std::int64_t n, std::string_view who);

/// The lower Cholesky factor of a symmetric positive definite matrix; ood::StateError
/// "<who>: the <what> is not positive definite (...)" otherwise.
OOD_SDK_API at::Tensor cholesky_factor(const at::Tensor& m, std::string_view who, const std::string& what);

/// P = inv(cov) through its Cholesky factor, symmetrised.
OOD_SDK_API at::Tensor precision_of(const at::Tensor& cov, std::string_view who);

/// d[n, k] = (z_n - mu_k)^T P (z_n - mu_k) = ||z_n L - mu_k L||^2 [N, K] in float64, with
/// `factor` = L the Cholesky factor of P = L L^T and `mu` [K, D] float64. Chunked over the
/// classes so that the temporary [N, chunk, D] stays at about 4M doubles (32 MB).
OOD_SDK_API at::Tensor mahalanobis_distances(const at::Tensor& z, const at::Tensor& mu, const at::Tensor& factor);

/// 0.5 * sum_n d[n, k*_n], k*_n the closest class of sample n: differentiable in the float64
/// features `z`, the term whose input gradient Lee et al.'s input perturbation follows
/// (pytorch-ood takes the mean; the sign of the gradient is the same).
OOD_SDK_API at::Tensor nearest_class_half_distance(const at::Tensor& z, const at::Tensor& mu,
                                                   const at::Tensor& factor);

/// NumPy's `percentile(values, q)` with the default linear interpolation, for q in
/// [0, 100], computed in float64 over every element of `values` (any shape, any
/// floating or integer dtype). O(n) time and one float64 copy of the values.
/// Throws ood::InvalidArgument for an empty tensor, q outside [0, 100] or a NaN value.
OOD_SDK_API double percentile(const at::Tensor& values, double q);

}  // namespace ood
