// KNN: distance to the k-th nearest in-distribution feature (Sun, Ming, Zhu & Li,
// "Out-of-Distribution Detection with Deep Nearest Neighbors", ICML 2022).
//
//   z' = z / ||z||_2                      (normalize: true, the paper)
//   score(x) = || z'(x) - z'_(k) ||_2     z'_(k): the k-th nearest fit feature
//
// pytorch-ood 0.2's KNN is scikit-learn's NearestNeighbors(n_neighbors=1) on raw
// features: `k: 1, normalize: false` reproduces it exactly.
//
// Exact search: the stored features are kept centred on their mean (so that the
// expanded form below does not cancel for features far from the origin); queries are
// compared with them block by block (queries x stored chunk, bounded memory) by float32
// matmul (||q||^2 + ||s||^2 - 2 q.s); the best k + 8 candidates of each query are kept,
// and their distances are recomputed from the differences ((q - s)^2, summed in float64).
#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "knn";
// Extra candidates kept from the float32 pass before the exact float64 recomputation.
constexpr std::int64_t kExtraCandidates = 8;
// Elements of one block of the query x stored distance matrix (64 MiB of float32).
constexpr std::int64_t kBlockElements = std::int64_t{1} << 22;

class Knn final : public ood::Detector {
 public:
  Knn(std::int64_t k, bool normalize, std::string k_pointer)
      : k_(k), normalize_(normalize), k_pointer_(std::move(k_pointer)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.fit = true;
    return n;
  }

  void attach(ood::Model& model) override { feature_dim_ = model.info().feature_dim; }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const at::Tensor features = checked_features(views.features(), "fitting features");
    if (labels.dim() != 1 || labels.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": fitting labels must be [" + std::to_string(features.size(0)) +
                            "], got " + ood::describe_tensor(labels));
    if (!parts_.empty() && parts_.front().size(1) != features.size(1))
      throw ood::ShapeError(std::string(kName) + ": fitting features of size " + std::to_string(features.size(1)) +
                            " after earlier batches of size " + std::to_string(parts_.front().size(1)));
    const at::Tensor keep = (labels.to(features.device()) >= 0);
    at::Tensor z = features.detach().index({keep});
    if (z.size(0) == 0) return;
    if (!at::isfinite(z).all().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": the fitting features contain NaN or infinite values");
    parts_.push_back(prepare(z).contiguous());
    stored_ = at::Tensor();
  }

  void finish_fit() override {
    if (parts_.empty())
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    at::Tensor all = at::cat(parts_);
    parts_.clear();
    if (k_ > all.size(0))
      throw ood::InvalidArgument(k_pointer_ + ": k = " + std::to_string(k_) + " exceeds the number of " +
                                 "in-distribution fitting samples (" + std::to_string(all.size(0)) + ")");
    // Centre in place, chunk by chunk, in float64 (no float64 copy of the whole set).
    at::Tensor center = at::zeros({all.size(1)}, at::TensorOptions().dtype(at::kDouble).device(all.device()));
    for (std::int64_t s = 0; s < all.size(0); s += 8192)
      center += all.slice(0, s, std::min(all.size(0), s + 8192)).to(at::kDouble).sum(0);
    center /= static_cast<double>(all.size(0));
    for (std::int64_t s = 0; s < all.size(0); s += 8192) {
      at::Tensor rows = all.slice(0, s, std::min(all.size(0), s + 8192));
      rows.copy_(rows.to(at::kDouble) - center);
    }
    set_stored(std::move(all), center);
  }

  bool is_fitted() const override { return stored_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!stored_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted: give it \"fit\" (fitting data) or \"load_state\"");
    const at::Tensor features = checked_features(views.features(), "features");
    if (features.size(1) != stored_.size(1))
      throw ood::ShapeError(std::string(kName) + ": features have " + std::to_string(features.size(1)) +
                            " dimensions, the fitted features " + std::to_string(stored_.size(1)));
    const at::Tensor q = prepare(features.detach()).to(stored_.device(), at::kDouble) - center_.to(stored_.device());
    return kth_distance(q).to(features.device(), features.scalar_type());
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!stored_.defined()) return out;
    out.set("features_centered", stored_);
    out.set("center", center_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    for (const auto& key : saved.keys())
      if (key != "features_centered" && key != "center")
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key +
                              "' (expected features_centered, center)");
    for (const char* key : {"features_centered", "center"})
      if (!saved.contains(key)) throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "'");
    const at::Tensor& f = saved.at("features_centered");
    const at::Tensor& c = saved.at("center");
    if (f.dim() != 2 || !at::isFloatingType(f.scalar_type()) || f.size(0) == 0 || f.size(1) == 0)
      throw ood::StateError(std::string(kName) + ": state 'features_centered' must be a non-empty floating [M, D], got " +
                            ood::describe_tensor(f));
    if (c.dim() != 1 || !at::isFloatingType(c.scalar_type()) || c.size(0) != f.size(1))
      throw ood::StateError(std::string(kName) + ": state 'center' must be floating [" + std::to_string(f.size(1)) +
                            "], got " + ood::describe_tensor(c));
    if (feature_dim_ > 0 && f.size(1) != feature_dim_)
      throw ood::StateError(std::string(kName) + ": the state's features have " + std::to_string(f.size(1)) +
                            " dimensions, the model's features " + std::to_string(feature_dim_));
    if (f.size(0) < k_)
      throw ood::StateError(std::string(kName) + ": k = " + std::to_string(k_) + " but the state holds only " +
                            std::to_string(f.size(0)) + " features");
    if (!at::isfinite(f).all().item<bool>() || !at::isfinite(c).all().item<bool>())
      throw ood::StateError(std::string(kName) + ": the state contains NaN or infinite values");
    set_stored(f.to(at::kCPU, at::kFloat).contiguous().clone(), c.to(at::kCPU, at::kDouble).clone());
  }

 private:
  at::Tensor checked_features(const at::Tensor& features, const char* what) const {
    ood::require_floating(features, kName, what, 2, "[N, D]");
    return features;
  }

  // Float32, L2-normalised when asked (as torch.nn.functional.normalize: x / max(||x||, 1e-12)).
  at::Tensor prepare(const at::Tensor& z) const {
    at::Tensor f = z.to(at::kFloat);
    if (!normalize_) return f;
    const at::Tensor norms = z.to(at::kDouble).norm(2, 1, true).clamp_min(1e-12);
    return (z.to(at::kDouble) / norms).to(at::kFloat);
  }

  void set_stored(at::Tensor centered, at::Tensor center) {
    stored_ = std::move(centered);
    center_ = std::move(center);
    stored_sq_ = at::sum(stored_ * stored_, {1}, false, at::kDouble).to(at::kFloat);
  }

  // The distance of each (centred, float64) query row to its k-th nearest stored row, float64 [Q].
  at::Tensor kth_distance(const at::Tensor& q64) const {
    const at::Tensor q = q64.to(at::kFloat).contiguous();
    const std::int64_t m = stored_.size(0);
    const std::int64_t keep = std::min(m, k_ + kExtraCandidates);
    const std::int64_t qn = q.size(0);
    // Stored rows per chunk and queries per block: one block of distances holds at most
    // kBlockElements values; the running candidates are [queries, keep].
    const std::int64_t chunk = std::max<std::int64_t>(std::min(m, kBlockElements / 256), keep);
    const std::int64_t qblock = std::max<std::int64_t>(1, kBlockElements / chunk);
    std::vector<at::Tensor> out;
    for (std::int64_t q0 = 0; q0 < qn; q0 += qblock) {
      const at::Tensor qb = q.slice(0, q0, std::min(qn, q0 + qblock));
      const at::Tensor qb64 = q64.slice(0, q0, std::min(qn, q0 + qblock));
      const at::Tensor q_sq = qb64.pow(2).sum(1, true).to(at::kFloat);
      at::Tensor best_d, best_i;  // [B, keep] approximate squared distances and indices
      for (std::int64_t s0 = 0; s0 < m; s0 += chunk) {
        const std::int64_t s1 = std::min(m, s0 + chunk);
        const at::Tensor d = at::addmm(q_sq + stored_sq_.slice(0, s0, s1).unsqueeze(0), qb,
                                       stored_.slice(0, s0, s1).t(), 1.0, -2.0);
        auto [vals, pos] = at::topk(d, std::min(keep, s1 - s0), 1, /*largest=*/false, /*sorted=*/false);
        pos = pos + s0;
        if (best_d.defined()) {
          const at::Tensor all_d = at::cat({best_d, vals}, 1);
          const at::Tensor all_i = at::cat({best_i, pos}, 1);
          auto [merged, where] = at::topk(all_d, std::min(keep, all_d.size(1)), 1, false, false);
          best_d = merged;
          best_i = all_i.gather(1, where);
        } else {
          best_d = vals;
          best_i = pos;
        }
      }
      // The candidates' distances recomputed from differences (no cancellation), summed in
      // float64, then the k-th smallest.
      const std::int64_t b = qb.size(0);
      const std::int64_t kc = best_i.size(1);
      const std::int64_t rows_per_step = std::max<std::int64_t>(1, kBlockElements / (kc * q.size(1)));
      std::vector<at::Tensor> parts;
      for (std::int64_t r0 = 0; r0 < b; r0 += rows_per_step) {
        const std::int64_t r1 = std::min(b, r0 + rows_per_step);
        at::Tensor diff = stored_.index_select(0, best_i.slice(0, r0, r1).reshape({-1})).view({r1 - r0, kc, -1});
        diff.sub_(qb.slice(0, r0, r1).unsqueeze(1));
        diff.mul_(diff);
        const at::Tensor dist = at::sum(diff, {2}, false, at::kDouble);  // [r, kc]
        parts.push_back(std::get<0>(at::kthvalue(dist, k_, 1)).sqrt());
      }
      out.push_back(at::cat(parts));
    }
    return at::cat(out);
  }

  std::int64_t k_;
  bool normalize_;
  std::string k_pointer_;
  std::int64_t feature_dim_ = 0;
  std::vector<at::Tensor> parts_;  // fitting: the IN features of each batch (float32)
  at::Tensor stored_;              // fitted: every IN fitting feature minus center_ [M, D] float32
  at::Tensor center_;              // the mean of the (normalised) fitting features [D] float64
  at::Tensor stored_sq_;           // squared norms of stored_ [M] float32
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "distance to the k-th nearest (L2-normalised) in-distribution feature";
  info.paper = "Sun, Ming, Zhu & Li, Out-of-Distribution Detection with Deep Nearest Neighbors, ICML";
  info.year = 2022;
  info.doc =
      "score = ||z' - z'_(k)||_2, larger for outliers, where z' = z / ||z||_2 are the penultimate\n"
      "features (normalize: true, as the paper) and z'_(k) the k-th nearest of the in-distribution\n"
      "fitting features (OOD-labelled fit samples are ignored).\n"
      "Keeps the fit features: fitting stores every IN fitting feature (M x D float32, centred on\n"
      "their mean: the state holds features_centered and center); KNN cannot be reduced to\n"
      "streaming statistics.\n"
      "Exact search with LibTorch matmul in blocks of queries x stored chunk (bounded memory), the\n"
      "k + 8 best candidates re-measured from differences. k larger than the number of fit samples is an error.\n"
      "Deviation from pytorch-ood 0.2 (POLICY.md): pytorch_ood.detector.KNN is the nearest neighbour\n"
      "(k = 1) on raw features, shape [N, 1] float64; ood follows the paper by default, and\n"
      "{\"k\": 1, \"normalize\": false} reproduces pytorch-ood's scores (as [N], in the features' dtype).";
  info.params = {
      ood::ParamSpec::integer("k", "which nearest neighbour's distance is the score (1 = the nearest)")
          .default_value(50)
          .min(1),
      ood::ParamSpec::boolean("normalize", "L2-normalise the features (fit and test) before the search, as the paper")
          .default_value(true),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Knn>(params.get_int("k"), params.get_bool("normalize"), params.pointer("k"));
  });
}

}  // namespace

OOD_PLUGIN("knn", "k-nearest-neighbour distance detector", register_components)
