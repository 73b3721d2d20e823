#include "ood/stats.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/error.hpp"

namespace ood {

ClassMoments::ClassMoments(bool with_scatter) : with_scatter_(with_scatter) {}

void ClassMoments::add(const at::Tensor& features, const at::Tensor& labels) {
  if (features.dim() != 2 || !at::isFloatingType(features.scalar_type()))
    throw ShapeError("fitting expects floating features [N, D], got " + describe_tensor(features));
  if (labels.dim() != 1 || labels.size(0) != features.size(0) || at::isFloatingType(labels.scalar_type()) ||
      at::isComplexType(labels.scalar_type()) || labels.scalar_type() == at::kBool)
    throw ShapeError("fitting expects integer labels [" + std::to_string(features.size(0)) + "], got " +
                     describe_tensor(labels));
  if (dim_ != 0 && features.size(1) != dim_)
    throw ShapeError("fitting: features of size " + std::to_string(features.size(1)) +
                     " after earlier batches of size " + std::to_string(dim_));
  const at::Tensor keep = labels.to(at::kCPU) >= 0;
  const at::Tensor z = features.detach().to(at::kCPU, at::kDouble).index({keep});
  const at::Tensor y = labels.to(at::kCPU, at::kLong).index({keep});
  if (z.size(0) == 0) return;
  if (!at::isfinite(z).all().item<bool>())
    throw ShapeError("fitting: the features contain NaN or infinite values");
  if (dim_ == 0) {
    dim_ = z.size(1);
    shift_ = z.mean(0);
    counts_ = at::zeros({0}, at::kDouble);
    sums_ = at::zeros({0, dim_}, at::kDouble);
    if (with_scatter_) scatter_ = at::zeros({dim_, dim_}, at::kDouble);
  }
  const std::int64_t k_needed = y.max().item<std::int64_t>() + 1;
  if (k_needed > counts_.size(0)) {
    const std::int64_t grow = k_needed - counts_.size(0);
    counts_ = at::cat({counts_, at::zeros({grow}, at::kDouble)});
    sums_ = at::cat({sums_, at::zeros({grow, dim_}, at::kDouble)});
  }
  const at::Tensor c = z - shift_;
  counts_.index_add_(0, y, at::ones({y.size(0)}, at::kDouble));
  sums_.index_add_(0, y, c);
  if (with_scatter_) scatter_.addmm_(c.t(), c);
  total_ += z.size(0);
}

std::int64_t ClassMoments::num_classes() const { return counts_.defined() ? counts_.size(0) : 0; }

void ClassMoments::require_samples(const char* what) const {
  if (total_ == 0) throw StateError(std::string(what) + ": no in-distribution fitting samples were seen");
}

at::Tensor ClassMoments::counts() const {
  return counts_.defined() ? counts_.to(at::kLong) : at::zeros({0}, at::kLong);
}

at::Tensor ClassMoments::class_means() const {
  require_samples("class means");
  const at::Tensor empty = (counts_ == 0).nonzero().flatten();
  if (empty.numel() > 0) {
    std::string list;
    for (std::int64_t i = 0; i < empty.numel() && i < 10; ++i)
      list += (i ? ", " : "") + std::to_string(empty[i].item<std::int64_t>());
    if (empty.numel() > 10) list += ", ...";
    throw StateError("no fitting sample of class " + list + " (classes 0.." + std::to_string(num_classes() - 1) +
                     " are expected)");
  }
  return sums_ / counts_.unsqueeze(1) + shift_;
}

at::Tensor ClassMoments::mean() const {
  require_samples("mean");
  return sums_.sum(0) / static_cast<double>(total_) + shift_;
}

at::Tensor ClassMoments::within_class_scatter() const {
  require_samples("within-class scatter");
  if (!with_scatter_) throw StateError("within-class scatter: not accumulated");
  // sum_k sum_i (c_i - m_k)(c_i - m_k)^T = S - sum_k n_k m_k m_k^T with m_k = s_k / n_k.
  const at::Tensor nonempty = counts_ > 0;
  const at::Tensor s = sums_.index({nonempty});
  const at::Tensor n = counts_.index({nonempty});
  return scatter_ - at::mm((s / n.unsqueeze(1)).t(), s);
}

at::Tensor ClassMoments::total_scatter() const {
  require_samples("total scatter");
  if (!with_scatter_) throw StateError("total scatter: not accumulated");
  const at::Tensor s = sums_.sum(0);
  return scatter_ - at::outer(s, s) / static_cast<double>(total_);
}

at::Tensor fitted_class_means(const ClassMoments& moments, std::string_view who) {
  if (moments.total() == 0)
    throw StateError(std::string(who) + ": the fitting data holds no in-distribution samples");
  try {
    return moments.class_means();
  } catch (const StateError& e) {
    throw StateError(std::string(who) + ": " + e.what());
  }
}

at::Tensor regularised_covariance(const at::Tensor& scatter, std::int64_t n, std::string_view who) {
  if (n < 2)
    throw StateError(std::string(who) + ": fitting needs at least 2 in-distribution samples, got " + std::to_string(n));
  const at::Tensor cov = scatter / static_cast<double>(n - 1);
  return 0.5 * (cov + cov.t()) + 1e-6 * at::eye(cov.size(0), cov.options());
}

at::Tensor cholesky_factor(const at::Tensor& m, std::string_view who, const std::string& what) {
  auto [factor, info] = at::linalg_cholesky_ex(m);
  if (info.item<std::int64_t>() != 0 || !at::isfinite(factor).all().item<bool>())
    throw StateError(std::string(who) + ": the " + what +
                     " is not positive definite (too few fit samples for the feature size, or "
                     "features too large for the 1e-6 regularisation)");
  return factor;
}

at::Tensor precision_of(const at::Tensor& cov, std::string_view who) {
  const at::Tensor p = at::cholesky_inverse(cholesky_factor(cov, who, "covariance"));
  return 0.5 * (p + p.t());
}

at::Tensor mahalanobis_distances(const at::Tensor& z, const at::Tensor& mu, const at::Tensor& factor) {
  const at::Tensor f = factor.to(z.device());
  const at::Tensor zl = at::mm(z.to(at::kDouble), f);
  const at::Tensor ml = at::mm(mu.to(z.device()), f);
  const std::int64_t n = zl.size(0), k = ml.size(0), d = ml.size(1);
  const std::int64_t chunk = std::max<std::int64_t>(1, (std::int64_t{1} << 22) / std::max<std::int64_t>(1, n * d));
  std::vector<at::Tensor> parts;
  for (std::int64_t k0 = 0; k0 < k; k0 += chunk) {
    const at::Tensor diff = zl.unsqueeze(1) - ml.slice(0, k0, std::min(k, k0 + chunk)).unsqueeze(0);
    parts.push_back(diff.pow(2).sum(2));
  }
  return at::cat(parts, 1);
}

at::Tensor nearest_class_half_distance(const at::Tensor& z, const at::Tensor& mu, const at::Tensor& factor) {
  const at::Tensor nearest = mahalanobis_distances(z.detach(), mu, factor).argmin(1);
  const at::Tensor centred = at::mm(z - mu.to(z.device()).index_select(0, nearest), factor.to(z.device()));
  return 0.5 * centred.pow(2).sum();
}

double percentile(const at::Tensor& values, double q) {
  if (!(q >= 0.0 && q <= 100.0)) throw InvalidArgument("percentile: q must lie in [0, 100], got " + std::to_string(q));
  if (!values.defined() || values.numel() == 0) throw InvalidArgument("percentile of an empty tensor");
  const at::Tensor flat = values.detach().to(at::kCPU, at::kDouble).contiguous().view({-1});
  std::vector<double> v(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  if (std::any_of(v.begin(), v.end(), [](double x) { return std::isnan(x); }))
    throw InvalidArgument("percentile: the values contain NaN");
  // NumPy 'linear': position (n - 1) * q / 100 between the sorted neighbours.
  const double pos = static_cast<double>(v.size() - 1) * q / 100.0;
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(lo);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  if (frac == 0.0 || lo + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  // numpy's _lerp: a + (b - a) * t, computed from the other end for t >= 0.5.
  return frac >= 0.5 ? b - (b - a) * (1.0 - frac) : a + (b - a) * frac;
}

}  // namespace ood
