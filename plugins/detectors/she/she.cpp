// SHE: simplified Hopfield energy (Zhang et al., "Out-of-Distribution
// Detection based on In-Distribution Data Patterns Memorization with Modern Hopfield
// Energy", ICLR 2023), as pytorch-ood's SHE.
//
//   S_c      = mean of the fitting features z with label c and argmax logits(z) == c
//   score(x) = -<z, S_{argmax logits(x)}>
//
// Fitting streams float64 per-class sums and counts. A class without correctly
// classified fitting samples (pytorch-ood: a NaN pattern) falls back, with a warning,
// to the mean of all its fitting samples; a class without any fitting sample is an error.
#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "she";

std::string class_list(const at::Tensor& classes) {
  std::string list;
  for (std::int64_t i = 0; i < classes.numel() && i < 20; ++i)
    list += (i ? ", " : "") + std::to_string(classes[i].item<std::int64_t>());
  if (classes.numel() > 20) list += ", ... (" + std::to_string(classes.numel()) + " classes)";
  return list;
}

class She final : public ood::Detector {
 public:
  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.logits = true;
    n.fit = true;
    n.fit_labels = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const ood::ModelInfo info = model.info();
    num_classes_ = info.num_classes;
    feature_dim_ = info.feature_dim;
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "fitting features", 2, "[N, D]");
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "fitting logits", 2, "[N, C]");
    if (labels.dim() != 1 || labels.size(0) != features.size(0) || logits.size(0) != features.size(0) ||
        at::isFloatingType(labels.scalar_type()))
      throw ood::ShapeError(std::string(kName) + ": fitting expects integer labels [" +
                            std::to_string(features.size(0)) + "] for features " + ood::describe_tensor(features) +
                            " and logits " + ood::describe_tensor(logits) + ", got " + ood::describe_tensor(labels));
    const std::int64_t c = logits.size(1), d = features.size(1);
    if (!sums_.defined()) {
      sums_ = at::zeros({c, d}, at::kDouble);
      all_sums_ = at::zeros({c, d}, at::kDouble);
      counts_ = at::zeros({c}, at::kLong);
      all_counts_ = at::zeros({c}, at::kLong);
    } else if (sums_.size(0) != c || sums_.size(1) != d) {
      throw ood::ShapeError(std::string(kName) + ": fitting batch with " + std::to_string(c) + " classes and " +
                            std::to_string(d) + " features after batches with " + std::to_string(sums_.size(0)) +
                            " and " + std::to_string(sums_.size(1)));
    }
    const at::Tensor y_all = labels.to(at::kCPU, at::kLong);
    const at::Tensor keep = y_all >= 0;
    const at::Tensor y = y_all.index({keep});
    if (y.numel() == 0) return;
    if (y.max().item<std::int64_t>() >= c)
      throw ood::ShapeError(std::string(kName) + ": fitting label " + std::to_string(y.max().item<std::int64_t>()) +
                            " but the logits have " + std::to_string(c) + " classes");
    const at::Tensor z = features.detach().to(at::kCPU, at::kDouble).index({keep});
    if (!at::isfinite(z).all().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": the fitting features contain NaN or infinite values");
    const at::Tensor pred = logits.detach().to(at::kCPU).argmax(1).index({keep});
    const at::Tensor ok = pred == y;
    all_sums_.index_add_(0, y, z);
    all_counts_.index_add_(0, y, at::ones_like(y));
    sums_.index_add_(0, y.index({ok}), z.index({ok}));
    counts_.index_add_(0, y.index({ok}), at::ones_like(y.index({ok})));
  }

  void finish_fit() override {
    if (!sums_.defined() || all_counts_.sum().item<std::int64_t>() == 0)
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    const at::Tensor missing = (all_counts_ == 0).nonzero().flatten();
    if (missing.numel() > 0)
      throw ood::StateError(std::string(kName) + ": no fitting sample of class " + class_list(missing) +
                            " (a pattern per class is needed: classes 0.." + std::to_string(sums_.size(0) - 1) + ")");
    const at::Tensor fallback = (counts_ == 0).nonzero().flatten();
    if (fallback.numel() > 0)
      ood::log::warn(std::string(kName) + ": no correctly classified fitting sample of class " +
                     class_list(fallback) + "; its pattern is the mean of all its fitting samples instead");
    const at::Tensor use_all = (counts_ == 0).unsqueeze(1);
    const at::Tensor mean_ok = sums_ / counts_.clamp_min(1).to(at::kDouble).unsqueeze(1);
    const at::Tensor mean_all = all_sums_ / all_counts_.to(at::kDouble).unsqueeze(1);
    patterns_ = at::where(use_all, mean_all, mean_ok).to(at::kFloat).contiguous();
    n_correct_ = counts_.clone();
    sums_ = all_sums_ = counts_ = all_counts_ = at::Tensor();
  }

  bool is_fitted() const override { return patterns_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!patterns_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted: give it \"fit\" (fitting data) or \"load_state\"");
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    const at::Tensor& logits = views.logits();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    if (features.size(1) != patterns_.size(1) || logits.size(1) != patterns_.size(0) ||
        logits.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) + " and logits " +
                            ood::describe_tensor(logits) + " do not match the fitted patterns [" +
                            std::to_string(patterns_.size(0)) + ", " + std::to_string(patterns_.size(1)) + "]");
    const at::Tensor z = features.detach();
    const at::Tensor s = patterns_.to(z.device(), z.scalar_type()).index_select(0, logits.argmax(1).to(z.device()));
    return -(z * s).sum(1);
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!patterns_.defined()) return out;
    out.set("patterns", patterns_);
    out.set("n_correct", n_correct_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    for (const auto& key : saved.keys())
      if (key != "patterns" && key != "n_correct")
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key +
                              "' (expected patterns, n_correct)");
    for (const char* key : {"patterns", "n_correct"})
      if (!saved.contains(key)) throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "'");
    const at::Tensor p = saved.at("patterns"), n = saved.at("n_correct");
    if (p.dim() != 2 || !at::isFloatingType(p.scalar_type()) || p.size(0) == 0 || p.size(1) == 0)
      throw ood::StateError(std::string(kName) + ": state 'patterns' must be floating [C, D], got " +
                            ood::describe_tensor(p));
    if (n.dim() != 1 || n.scalar_type() != at::kLong || n.size(0) != p.size(0))
      throw ood::StateError(std::string(kName) + ": state 'n_correct' must be int64 [" + std::to_string(p.size(0)) +
                            "], got " + ood::describe_tensor(n));
    if ((num_classes_ > 0 && p.size(0) != num_classes_) || (feature_dim_ > 0 && p.size(1) != feature_dim_))
      throw ood::StateError(std::string(kName) + ": state 'patterns' is " + ood::describe_tensor(p) +
                            ", the model has " + std::to_string(num_classes_) + " classes and " +
                            std::to_string(feature_dim_) + " features");
    if (!at::isfinite(p).all().item<bool>())
      throw ood::StateError(std::string(kName) + ": state 'patterns' contains NaN or infinite values");
    patterns_ = p.to(at::kCPU, at::kFloat).contiguous().clone();
    n_correct_ = n.to(at::kCPU).clone();
  }

 private:
  std::int64_t num_classes_ = 0, feature_dim_ = 0;  // from attach (0: unknown)
  at::Tensor sums_, all_sums_, counts_, all_counts_;  // fitting, float64 / int64
  at::Tensor patterns_, n_correct_;                   // fitted state
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "negative inner product with the stored pattern of the predicted class";
  info.paper =
      "Zhang et al., Out-of-Distribution Detection based on In-Distribution Data Patterns "
      "Memorization with Modern Hopfield Energy, ICLR";
  info.year = 2023;
  info.doc =
      "S_c = mean of the IN fitting features z with label c that the model classifies correctly\n"
      "(argmax logits = c); score = -<z, S_{argmax logits}>, larger for outliers.\n"
      "Matches pytorch_ood.detector.SHE (parity). Fitting streams float64 per-class sums and counts\n"
      "(the state is the C x D patterns, not the fit features).\n"
      "Never NaN: where pytorch-ood gives a class without correctly classified fitting samples a NaN\n"
      "pattern, ood falls back to the mean of all fitting samples of that class and logs a warning\n"
      "naming it; a class with no fitting sample at all is an error at the end of fitting.";
  registrar.add_detector(info, [](const ood::Params&, ood::Context&) { return std::make_shared<She>(); });
}

}  // namespace

OOD_PLUGIN("she", "Simplified Hopfield energy detector", register_components)
