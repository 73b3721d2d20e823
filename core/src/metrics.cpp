#include "ood/core/metrics.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "ood/error.hpp"

namespace ood {
namespace {

using detail::KeyVector;
__extension__ typedef unsigned __int128 u128;

// ---------------------------------------------------------------------------------
// Order-preserving keys: for finite IEEE values a < b  <=>  key(a) < key(b), and
// key(a) == key(b) <=> a == b (so -0.0 is folded onto +0.0 first: they are one tie).
// Flipping the sign bit of non-negative values and all bits of negative ones maps the
// sign-magnitude layout onto unsigned order. Finite keys are never 0 (0 would be the
// key of a negative NaN), which lets 0 serve as a sentinel below every key.

template <class K, class F>
struct KeyTraits;

template <>
struct KeyTraits<uint32_t, float> {
  static constexpr uint32_t kSign = 0x80000000u;
  static constexpr uint32_t kExp = 0x7F800000u;
};
template <>
struct KeyTraits<uint64_t, double> {
  static constexpr uint64_t kSign = 0x8000000000000000ull;
  static constexpr uint64_t kExp = 0x7FF0000000000000ull;
};

template <class K>
using FloatOf = std::conditional_t<std::is_same_v<K, uint32_t>, float, double>;

// Returns the key and sets `bad` when the value is NaN or +-Inf.
template <class K>
inline K to_key(FloatOf<K> value, bool& bad) {
  using T = KeyTraits<K, FloatOf<K>>;
  K u = std::bit_cast<K>(value);
  bad = (u & T::kExp) == T::kExp;
  u = (u == T::kSign) ? K{0} : u;
  const K mask = static_cast<K>(K{0} - (u >> (sizeof(K) * 8 - 1))) | T::kSign;
  return u ^ mask;
}

template <class K>
inline FloatOf<K> from_key(K key) {
  using T = KeyTraits<K, FloatOf<K>>;
  const K u = (key & T::kSign) ? (key ^ T::kSign) : static_cast<K>(~key);
  return std::bit_cast<FloatOf<K>>(u);
}

// ---------------------------------------------------------------------------------
// Splitting scores into per-class key vectors.

template <class L>
inline bool is_ood(L label) {
  if constexpr (std::is_signed_v<L>) {
    return label < 0;
  } else {
    return false;
  }
}

// Appends the keys of scores[0, n) to `in` / `ood` by label, skipping pixels whose
// label equals `void_label` when kVoid. Returns the index of the first non-finite
// kept score, or n when all are finite; on failure both vectors are left as they were.
// The class decision is branch-free (labels are unpredictable): each key is written
// to both vectors and only the matching write position advances.
template <class K, bool kVoid, class S, class L>
std::size_t append_keys(const S* scores, const L* labels, std::size_t n, int64_t void_label, KeyVector<K>& in,
                        KeyVector<K>& ood) {
  const std::size_t in0 = in.size();
  const std::size_t ood0 = ood.size();
  // Worst case for each class; shrunk to the real counts below.
  in.resize(in0 + n);
  ood.resize(ood0 + n);
  K* pin = in.data();
  K* pood = ood.data();
  std::size_t ni = in0;
  std::size_t no = ood0;
  bool any_bad = false;
  for (std::size_t k = 0; k < n; ++k) {
    bool bad;
    const K key = to_key<K>(static_cast<FloatOf<K>>(scores[k]), bad);
    const bool o = is_ood(labels[k]);
    bool keep = true;
    if constexpr (kVoid) keep = static_cast<int64_t>(labels[k]) != void_label;
    pin[ni] = key;
    pood[no] = key;
    ni += static_cast<std::size_t>(keep & !o);
    no += static_cast<std::size_t>(keep & o);
    any_bad |= bad & keep;
  }
  if (any_bad) {
    in.resize(in0);
    ood.resize(ood0);
    for (std::size_t k = 0; k < n; ++k) {
      bool bad;
      (void)to_key<K>(static_cast<FloatOf<K>>(scores[k]), bad);
      if (bad && (!kVoid || static_cast<int64_t>(labels[k]) != void_label)) return k;
    }
  }
  in.resize(ni);
  ood.resize(no);
  return n;
}

// ---------------------------------------------------------------------------------
// Radix sort. One MSD pass scatters the keys by the 11 highest bits that differ
// between them (found from the keys' min and max, so clustered scores still spread)
// into the output; each bucket is then finished by an LSD radix sort of its
// remaining low bits (11-bit digits), mostly inside the cache. Digits that are the
// same for every key of a bucket cost no pass. The source is not modified.

constexpr unsigned kDigitBits = 11;
constexpr std::size_t kRadix = std::size_t{1} << kDigitBits;
constexpr std::size_t kSmallSort = 1024;  // below this, std::sort beats histograms

// Sorts a[0, m), whose keys agree on every bit from `bits` up, using t[0, m) as scratch.
template <class K>
void lsd_sort_low_bits(K* a, std::size_t m, unsigned bits, K* t) {
  if (m < kSmallSort || m > std::numeric_limits<uint32_t>::max()) {
    std::sort(a, a + m);
    return;
  }
  constexpr unsigned kMaxPasses = (sizeof(K) * 8 + kDigitBits - 1) / kDigitBits;
  const unsigned passes = (bits + kDigitBits - 1) / kDigitBits;
  std::array<uint32_t, kMaxPasses * kRadix> hist;
  std::fill_n(hist.begin(), passes * kRadix, 0u);
  for (std::size_t k = 0; k < m; ++k) {
    const K key = a[k];
    for (unsigned p = 0; p < passes; ++p) ++hist[p * kRadix + ((key >> (p * kDigitBits)) & (kRadix - 1))];
  }
  K* src = a;
  K* dst = t;
  for (unsigned p = 0; p < passes; ++p) {
    uint32_t* h = hist.data() + p * kRadix;
    const unsigned shift = p * kDigitBits;
    if (h[(a[0] >> shift) & (kRadix - 1)] == m) continue;
    uint32_t sum = 0;
    for (std::size_t d = 0; d < kRadix; ++d) {
      const uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (std::size_t k = 0; k < m; ++k) {
      const K key = src[k];
      dst[h[(key >> shift) & (kRadix - 1)]++] = key;
    }
    std::swap(src, dst);
  }
  if (src != a) std::memcpy(a, src, m * sizeof(K));
}

// Writes src[0, n) sorted ascending to out[0, n).
template <class K>
void radix_sort(const K* src, std::size_t n, K* out, KeyVector<K>& scratch) {
  if (n == 0) return;
  K lo = src[0];
  K hi = src[0];
  for (std::size_t k = 1; k < n; ++k) {
    lo = std::min(lo, src[k]);
    hi = std::max(hi, src[k]);
  }
  if (n < kSmallSort || lo == hi) {
    std::copy(src, src + n, out);
    if (lo != hi) std::sort(out, out + n);
    return;
  }
  const unsigned top = static_cast<unsigned>(std::bit_width(static_cast<K>(lo ^ hi)));
  const unsigned shift = top > kDigitBits ? top - kDigitBits : 0;
  std::vector<std::size_t> start(kRadix + 1, 0);
  for (std::size_t k = 0; k < n; ++k) ++start[((src[k] >> shift) & (kRadix - 1)) + 1];
  std::size_t largest = 0;
  for (std::size_t d = 0; d < kRadix; ++d) {
    largest = std::max(largest, start[d + 1]);
    start[d + 1] += start[d];
  }
  std::vector<std::size_t> next(start.begin(), start.end() - 1);
  for (std::size_t k = 0; k < n; ++k) {
    const K key = src[k];
    out[next[(key >> shift) & (kRadix - 1)]++] = key;
  }
  if (shift == 0) return;  // the MSD digit held every differing bit
  if (scratch.size() < largest) scratch.resize(largest);
  for (std::size_t d = 0; d < kRadix; ++d) {
    const std::size_t m = start[d + 1] - start[d];
    if (m > 1) lsd_sort_low_bits(out + start[d], m, shift, scratch.data());
  }
}

// ---------------------------------------------------------------------------------
// The single pass. Walks the distinct score values from the highest down, merging the
// two sorted key arrays; (tp0, fp0) are the cumulative OOD / IN counts above the
// current group and (tp1, fp1) include it. With prec(a, b) = a / (a + b) and
// prec(0, 0) = 1 (the curves' (recall 0, precision 1) end point):
//   AUROC    * 2NP += dfp * (tp0 + tp1)
//   AUPR-OUT * 2P  += dtp * (prec(tp0, fp0) + prec(tp1, fp1))
//   AUPR-IN  * 2N  += dfp * (prec(N - fp0, P - tp0) + prec(N - fp1, P - tp1))
// The AUPR-IN points are the complements of the counts (an ascending pass seen from
// above), and prec(N - fp1, P - tp1) after the lowest group is prec(0, 0) = 1.
template <class K>
OODMetricValues evaluate_sorted(const K* in, std::size_t n_in, const K* ood, std::size_t n_ood) {
  const int64_t N = static_cast<int64_t>(n_in);
  const int64_t P = static_cast<int64_t>(n_ood);
  // Positions count down; in[-1] == ood[-1] == 0 ends every run of equal keys.
  const K* pi = in + n_in - 1;
  const K* po = ood + n_ood - 1;
  const K* const in_end = in - 1;
  const K* const ood_end = ood - 1;

  int64_t tp = 0;
  int64_t fp = 0;
  u128 roc2 = 0;
  double out2 = 0.0;
  double in2 = 0.0;
  double prec_out = 1.0;
  double prec_in = static_cast<double>(N) / static_cast<double>(N + P);
  double fpr95 = 1.0;
  bool fpr_found = false;

  while (pi != in_end || po != ood_end) {
    const K a = *pi;
    const K b = *po;
    const K v = a > b ? a : b;
    // Most groups hold one sample: take it without a data-dependent branch, and loop
    // only for the rest of a tie.
    int64_t dtp = (b == v);
    int64_t dfp = (a == v);
    po -= dtp;
    pi -= dfp;
    if (*po == v || *pi == v) [[unlikely]] {
      while (*po == v) {
        --po;
        ++dtp;
      }
      while (*pi == v) {
        --pi;
        ++dfp;
      }
    }
    const int64_t tp1 = tp + dtp;
    const int64_t fp1 = fp + dfp;
    roc2 += static_cast<u128>(dfp) * static_cast<u128>(tp + tp1);
    // Both precisions from one division (the pass is bound by division throughput).
    const double above = static_cast<double>(tp1 + fp1);
    const double below = static_cast<double>((N - fp1) + (P - tp1));
    double p_out;
    double p_in;
    if (below > 0.0) [[likely]] {
      const double inv = 1.0 / (above * below);
      p_out = static_cast<double>(tp1) * below * inv;
      p_in = static_cast<double>(N - fp1) * above * inv;
    } else {
      p_out = static_cast<double>(tp1) / above;
      p_in = 1.0;
    }
    out2 += static_cast<double>(dtp) * (prec_out + p_out);
    in2 += static_cast<double>(dfp) * (prec_in + p_in);
    if (!fpr_found && 20 * tp1 >= 19 * P) {
      fpr_found = true;
      fpr95 = static_cast<double>(fp1) / static_cast<double>(N);
    }
    tp = tp1;
    fp = fp1;
    prec_out = p_out;
    prec_in = p_in;
  }

  OODMetricValues r;
  r.auroc = static_cast<double>(roc2) / (2.0 * static_cast<double>(N) * static_cast<double>(P));
  r.aupr_out = out2 / (2.0 * static_cast<double>(P));
  r.aupr_in = in2 / (2.0 * static_cast<double>(N));
  r.fpr95tpr = fpr95;
  return r;
}

std::string class_count_message(std::size_t n_in, std::size_t n_ood) {
  std::ostringstream s;
  s << "metrics need both IN (label >= 0) and OOD (label < 0) samples; got " << n_in << " IN and " << n_ood << " OOD";
  return s.str();
}

// Sorts a copy of both classes and runs the pass. Callers have checked n_in, n_ood > 0.
template <class K>
OODMetricValues evaluate_keys(const K* in, std::size_t n_in, const K* ood, std::size_t n_ood) {
  // Slot 0 of each copy holds the 0 sentinel evaluate_sorted relies on.
  KeyVector<K> sorted_in(n_in + 1), sorted_ood(n_ood + 1), scratch;
  sorted_in[0] = 0;
  sorted_ood[0] = 0;
  radix_sort(in, n_in, sorted_in.data() + 1, scratch);
  radix_sort(ood, n_ood, sorted_ood.data() + 1, scratch);
  return evaluate_sorted(sorted_in.data() + 1, n_in, sorted_ood.data() + 1, n_ood);
}

// ---------------------------------------------------------------------------------
// Tensor plumbing.

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Calls f(const L*) with the labels' data for each integer label dtype.
template <class F>
void with_labels(const at::Tensor& labels, F&& f) {
  switch (labels.scalar_type()) {
    case at::kByte:
      return f(labels.data_ptr<uint8_t>());
    case at::kChar:
      return f(labels.data_ptr<int8_t>());
    case at::kShort:
      return f(labels.data_ptr<int16_t>());
    case at::kInt:
      return f(labels.data_ptr<int32_t>());
    case at::kLong:
      return f(labels.data_ptr<int64_t>());
    default:
      break;
  }
  throw InvalidArgument(std::string("OODMetrics: labels must have an integer dtype (label < 0 = OOD), got ") +
                        c10::toString(labels.scalar_type()));
}

struct PreparedScores {
  at::Tensor tensor;  // contiguous, CPU, float32 or float64
  bool wide = false;
};

PreparedScores prepare_scores(const at::Tensor& scores) {
  const at::ScalarType st = scores.scalar_type();
  PreparedScores p;
  if (st == at::kFloat || st == at::kHalf || st == at::kBFloat16) {
    p.tensor = scores.to(at::kFloat).contiguous();
  } else if (st == at::kDouble) {
    p.tensor = scores.contiguous();
    p.wide = true;
  } else if (c10::isIntegralType(st, /*includeBool=*/false)) {
    // Rank statistics need only an order, so integer scores are welcome (pytorch-ood
    // refuses them).
    p.tensor = scores.to(at::kDouble).contiguous();
    p.wide = true;
  } else {
    throw InvalidArgument(std::string("OODMetrics: scores must have a floating or integer dtype, got ") +
                          c10::toString(st));
  }
  return p;
}

at::Tensor on_cpu(const at::Tensor& t) { return t.device().is_cpu() ? t : t.cpu(); }

[[noreturn]] void throw_non_finite(double value, std::size_t index, const at::Tensor& scores, const char* where) {
  std::ostringstream s;
  s << "OODMetrics.update: scores must be finite, got " << value << " at flat index " << index << where
    << " of the scores of shape " << shape_string(scores.sizes());
  throw InvalidArgument(s.str());
}

template <class K, class S, class L>
std::size_t append_any(const S* scores, const L* labels, std::size_t n, std::optional<int64_t> void_label,
                       KeyVector<K>& in, KeyVector<K>& ood) {
  if (void_label) return append_keys<K, true>(scores, labels, n, *void_label, in, ood);
  return append_keys<K, false>(scores, labels, n, 0, in, ood);
}

void widen_keys(KeyVector<uint32_t>& narrow, KeyVector<uint64_t>& wide) {
  wide.reserve(wide.size() + narrow.size());
  for (const uint32_t key : narrow) {
    bool bad;
    wide.push_back(to_key<uint64_t>(static_cast<double>(from_key<uint32_t>(key)), bad));
  }
  KeyVector<uint32_t>().swap(narrow);
}

template <class S>
OODMetricValues compute_flat(std::span<const S> scores, std::span<const int64_t> labels) {
  if (scores.size() != labels.size()) {
    std::ostringstream s;
    s << "compute_ood_metrics: scores and labels must have the same size, got " << scores.size() << " scores and "
      << labels.size() << " labels";
    throw InvalidArgument(s.str());
  }
  if (scores.empty()) throw InvalidArgument("compute_ood_metrics: no scores to compute metrics on");
  using K = std::conditional_t<std::is_same_v<S, float>, uint32_t, uint64_t>;
  KeyVector<K> in, ood;
  const std::size_t bad = append_keys<K, false>(scores.data(), labels.data(), scores.size(), 0, in, ood);
  if (bad != scores.size()) {
    std::ostringstream s;
    s << "compute_ood_metrics: scores must be finite, got " << scores[bad] << " at index " << bad;
    throw InvalidArgument(s.str());
  }
  if (in.empty() || ood.empty()) {
    throw InvalidArgument("compute_ood_metrics: " + class_count_message(in.size(), ood.size()));
  }
  return evaluate_keys(in.data(), in.size(), ood.data(), ood.size());
}

}  // namespace

// ---------------------------------------------------------------------------------

std::vector<std::pair<std::string, double>> as_named(const OODMetricValues& values) {
  return {{"AUROC", values.auroc},
          {"AUPR-IN", values.aupr_in},
          {"AUPR-OUT", values.aupr_out},
          {"FPR95TPR", values.fpr95tpr}};
}

OODMetricValues compute_ood_metrics(std::span<const float> scores, std::span<const int64_t> labels) {
  return compute_flat(scores, labels);
}

OODMetricValues compute_ood_metrics(std::span<const double> scores, std::span<const int64_t> labels) {
  return compute_flat(scores, labels);
}

OODMetricValues compute_ood_metrics(const at::Tensor& scores, const at::Tensor& labels) {
  OODMetrics metrics;
  metrics.update(scores, labels);
  return metrics.compute();
}

OODMetrics::Mode OODMetrics::parse_mode(std::string_view name) {
  if (name == "classification") return Mode::Classification;
  if (name == "segmentation") return Mode::Segmentation;
  throw InvalidArgument("OODMetrics: mode must be 'segmentation' or 'classification', got '" + std::string(name) + "'");
}

OODMetrics::OODMetrics(Mode mode, std::optional<int64_t> void_label) : mode_(mode), void_label_(void_label) {}

void OODMetrics::reset() {
  wide_ = false;
  KeyVector<uint32_t>().swap(in32_);
  KeyVector<uint32_t>().swap(ood32_);
  KeyVector<uint64_t>().swap(in64_);
  KeyVector<uint64_t>().swap(ood64_);
  images_.clear();
}

void OODMetrics::widen() {
  if (wide_) return;
  widen_keys(in32_, in64_);
  widen_keys(ood32_, ood64_);
  wide_ = true;
}

void OODMetrics::update(const at::Tensor& scores_in, const at::Tensor& labels_in) {
  if (!scores_in.defined() || !labels_in.defined()) {
    throw InvalidArgument("OODMetrics.update: scores and labels must be defined tensors");
  }
  if (scores_in.sizes() != labels_in.sizes()) {
    throw InvalidArgument("OODMetrics.update: scores and labels must have the same shape, got scores " +
                          shape_string(scores_in.sizes()) + " and labels " + shape_string(labels_in.sizes()));
  }
  if (mode_ == Mode::Segmentation && scores_in.dim() < 2) {
    throw InvalidArgument(
        "OODMetrics.update (segmentation): scores and labels must be [B, ...] with at least 2 "
        "dims (one image per row of the first dim), got shape " +
        shape_string(scores_in.sizes()));
  }
  const at::Tensor labels = on_cpu(labels_in).contiguous();
  // Checks the label dtype before any work on the scores.
  with_labels(labels, [](const auto*) {});
  const PreparedScores prepared = prepare_scores(on_cpu(scores_in));
  const std::size_t n = static_cast<std::size_t>(scores_in.numel());

  if (mode_ == Mode::Classification) {
    // Widening keeps every value, so a throw below still leaves the accumulated set as it was.
    if (prepared.wide) widen();
    with_labels(labels, [&](const auto* lab) {
      std::size_t bad = n;
      if (!prepared.wide && !wide_) {
        bad = append_keys<uint32_t, false>(prepared.tensor.data_ptr<float>(), lab, n, 0, in32_, ood32_);
      } else if (!prepared.wide) {
        bad = append_keys<uint64_t, false>(prepared.tensor.data_ptr<float>(), lab, n, 0, in64_, ood64_);
      } else {
        bad = append_keys<uint64_t, false>(prepared.tensor.data_ptr<double>(), lab, n, 0, in64_, ood64_);
      }
      if (bad != n) {
        const double value = prepared.wide ? prepared.tensor.data_ptr<double>()[bad]
                                           : static_cast<double>(prepared.tensor.data_ptr<float>()[bad]);
        throw_non_finite(value, bad, scores_in, "");
      }
    });
    return;
  }

  // Segmentation: images are independent, so each one is evaluated right away and only
  // its four values are kept.
  const std::size_t batch = static_cast<std::size_t>(scores_in.size(0));
  const std::size_t per_image = batch == 0 ? 0 : n / batch;
  std::vector<OODMetricValues> values;
  values.reserve(batch);
  auto run = [&](auto key_tag, const auto* sc) {
    using K = decltype(key_tag);
    KeyVector<K> in, ood;
    with_labels(labels, [&](const auto* lab) {
      for (std::size_t img = 0; img < batch; ++img) {
        in.clear();
        ood.clear();
        const std::size_t off = img * per_image;
        const std::size_t bad = append_any<K>(sc + off, lab + off, per_image, void_label_, in, ood);
        if (bad != per_image) {
          std::ostringstream where;
          where << " (image " << images_.size() + img << ", index " << img << " of this batch)";
          throw_non_finite(static_cast<double>(sc[off + bad]), off + bad, scores_in, where.str().c_str());
        }
        if (in.empty() || ood.empty()) {
          std::ostringstream s;
          s << "OODMetrics.update (segmentation): image " << images_.size() + img << " (index " << img
            << " of this batch) has " << in.size() << " IN and " << ood.size() << " OOD pixels";
          if (void_label_) s << " after removing void label " << *void_label_;
          s << "; " << class_count_message(in.size(), ood.size());
          throw InvalidArgument(s.str());
        }
        values.push_back(evaluate_keys(in.data(), in.size(), ood.data(), ood.size()));
      }
    });
  };
  if (prepared.wide) {
    run(uint64_t{}, prepared.tensor.data_ptr<double>());
  } else {
    run(uint32_t{}, prepared.tensor.data_ptr<float>());
  }
  images_.insert(images_.end(), values.begin(), values.end());
}

OODMetricValues OODMetrics::compute() const {
  if (mode_ == Mode::Segmentation) {
    if (images_.empty()) {
      throw InvalidArgument(
          "OODMetrics.compute (segmentation): no scores to compute metrics on (no image was "
          "passed to update())");
    }
    OODMetricValues mean;
    for (const OODMetricValues& v : images_) {
      mean.auroc += v.auroc;
      mean.aupr_in += v.aupr_in;
      mean.aupr_out += v.aupr_out;
      mean.fpr95tpr += v.fpr95tpr;
    }
    const double count = static_cast<double>(images_.size());
    mean.auroc /= count;
    mean.aupr_in /= count;
    mean.aupr_out /= count;
    mean.fpr95tpr /= count;
    return mean;
  }
  const std::size_t n_in = wide_ ? in64_.size() : in32_.size();
  const std::size_t n_ood = wide_ ? ood64_.size() : ood32_.size();
  if (n_in + n_ood == 0) {
    throw InvalidArgument("OODMetrics.compute: no scores to compute metrics on (update() received no samples)");
  }
  if (n_in == 0 || n_ood == 0) throw InvalidArgument("OODMetrics.compute: " + class_count_message(n_in, n_ood));
  if (wide_) return evaluate_keys(in64_.data(), n_in, ood64_.data(), n_ood);
  return evaluate_keys(in32_.data(), n_in, ood32_.data(), n_ood);
}

}  // namespace ood
