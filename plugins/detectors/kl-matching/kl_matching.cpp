// KL matching: KL divergence between a sample's posterior and the typical posterior of
// its predicted class.
//
//   d_k      = mean of softmax(f(x)) over the fit samples assigned to class k
//   score(x) = KL(p || d_yhat) = sum_c p_c log(p_c / d_yhat,c),  p = softmax(f(x)),
//              yhat = argmax_c p_c
//
// Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt & Song, "Scaling
// Out-of-Distribution Detection for Real-World Settings", ICML 2022.
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "kl-matching";

class KlMatching final : public ood::Detector {
 public:
  KlMatching(bool by_labels, std::string pointer) : by_labels_(by_labels), pointer_(std::move(pointer)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.logits = true;
    n.fit = true;
    n.fit_labels = by_labels_;
    return n;
  }

  void attach(ood::Model& model) override {
    const std::int64_t c = model.info().num_classes;
    if (c > 0) model_classes_ = c;
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const at::Tensor logits = checked_logits(views.logits(), "fit logits");
    const std::int64_t c = logits.size(1);
    if (labels.dim() != 1 || labels.size(0) != logits.size(0) || at::isFloatingType(labels.scalar_type()))
      throw ood::ShapeError(std::string(kName) + ": labels must be an integer vector [N] matching the logits " +
                            ood::describe_tensor(logits) + ", got " + ood::describe_tensor(labels));
    if (!sums_.defined()) {
      sums_ = at::zeros({c, c}, at::kDouble);
      counts_ = at::zeros({c}, at::kDouble);
      fitted_ = false;
    } else if (sums_.size(0) != c) {
      throw ood::ShapeError(std::string(kName) + ": fit logits have " + std::to_string(c) +
                            " classes, earlier batches " + std::to_string(sums_.size(0)));
    }
    const at::Tensor y = labels.to(at::kCPU, at::kLong);
    const at::Tensor known = y >= 0;  // OOD-labelled fit samples are ignored
    if (!known.any().item<bool>()) return;
    const at::Tensor l = logits.to(at::kCPU, at::kDouble).index({known});
    at::Tensor cls;
    if (by_labels_) {
      cls = y.index({known});
      if ((cls >= c).any().item<bool>())
        throw ood::ShapeError(std::string(kName) + ": fit label " + std::to_string(cls.max().item<std::int64_t>()) +
                              " >= the number of classes " + std::to_string(c));
    } else {
      cls = l.argmax(1);
    }
    sums_.index_add_(0, cls, at::softmax(l, 1));
    counts_.index_add_(0, cls, at::ones({cls.size(0)}, at::kDouble));
  }

  void finish_fit() override {
    if (!sums_.defined() || counts_.sum().item<double>() == 0)
      throw ood::StateError(std::string(kName) + ": no in-distribution fit sample (labels >= 0) was seen");
    const at::Tensor filled = counts_ > 0;
    templates_ = sums_ / counts_.clamp_min(1).unsqueeze(1);
    if (!filled.all().item<bool>()) {
      // A class that no fit sample was assigned to: the mean posterior over all fit
      // samples stands in for its template (pytorch-ood raises "Label k not fitted" when
      // such a class is predicted at test time).
      const at::Tensor overall = sums_.sum(0) / counts_.sum();
      std::string missing;
      const at::Tensor empty = (~filled).nonzero().view({-1});
      for (std::int64_t i = 0; i < empty.size(0); ++i) {
        const std::int64_t k = empty[i].item<std::int64_t>();
        templates_[k].copy_(overall);
        missing += (missing.empty() ? "" : ", ") + std::to_string(k);
      }
      ood::log::warn(std::string(kName) + ": no fit sample " + (by_labels_ ? "labelled" : "predicted") +
                     " as class(es) " + missing +
                     "; their template is the mean posterior over all fit samples");
    }
    counts_out_ = counts_.to(at::kLong);
    fitted_ = true;
  }

  bool is_fitted() const override { return fitted_; }

  at::Tensor score(ood::Views& views) override {
    if (!fitted_)
      throw ood::StateError(std::string(kName) + ": not fitted: fit it on in-distribution data or load a state");
    const at::Tensor logits = checked_logits(views.logits(), "logits");
    if (logits.size(1) != templates_.size(0))
      throw ood::ShapeError(std::string(kName) + ": logits have " + std::to_string(logits.size(1)) +
                            " classes, the fitted templates " + std::to_string(templates_.size(0)));
    const at::Tensor l = logits.to(at::kDouble);
    const at::Tensor log_p = at::log_softmax(l, 1);
    const at::Tensor p = at::exp(log_p);
    const at::Tensor d = templates_.to(l.device()).index_select(0, l.argmax(1));
    // 0 log 0 = 0; p_c > 0 with d_c = 0 gives +inf (the KL divergence is infinite).
    const at::Tensor terms = at::where(p > 0, p * (log_p - at::log(d)), at::zeros_like(p));
    return terms.sum(1).to(logits.scalar_type());
  }

  ood::TensorDict state() const override {
    ood::TensorDict s;
    if (!fitted_) return s;
    s.set("dists", templates_);
    s.set("counts", counts_out_);
    return s;
  }

  void load_state(const ood::TensorDict& state) override {
    const std::string who = std::string(kName) + ": state: ";
    for (const auto& key : state.keys())
      if (key != "dists" && key != "counts") throw ood::StateError(who + "unknown entry '" + key + "'");
    for (const char* key : {"dists", "counts"})
      if (!state.contains(key)) throw ood::StateError(who + "missing entry '" + key + "'");
    const at::Tensor d = state.at("dists");
    const at::Tensor n = state.at("counts");
    if (d.scalar_type() != at::kDouble || d.dim() != 2 || d.size(0) != d.size(1) || d.size(0) < 1)
      throw ood::StateError(who + "'dists' must be float64 [C, C], got " + ood::describe_tensor(d));
    if (n.scalar_type() != at::kLong || n.dim() != 1 || n.size(0) != d.size(0))
      throw ood::StateError(who + "'counts' must be int64 [C] with C = " + std::to_string(d.size(0)) + ", got " +
                            ood::describe_tensor(n));
    if (model_classes_ > 0 && d.size(0) != model_classes_)
      throw ood::StateError(who + "fitted for " + std::to_string(d.size(0)) + " classes, the model has " +
                            std::to_string(model_classes_));
    if (!at::isfinite(d).all().item<bool>() || (d < 0).any().item<bool>())
      throw ood::StateError(who + "'dists' must hold finite probabilities");
    templates_ = d.to(at::kCPU).clone();
    counts_out_ = n.to(at::kCPU).clone();
    counts_ = counts_out_.to(at::kDouble);
    sums_ = templates_ * counts_.unsqueeze(1);
    fitted_ = true;
  }

 private:
  static at::Tensor checked_logits(const at::Tensor& logits, const char* what) {
    ood::require_floating(logits, kName, what, 2, "[N, C]");
    return logits;
  }

  bool by_labels_;
  std::string pointer_;
  std::int64_t model_classes_ = 0;
  at::Tensor sums_;     // [C, C] float64: sum of softmax rows per assigned class
  at::Tensor counts_;   // [C] float64
  at::Tensor templates_;
  at::Tensor counts_out_;
  bool fitted_ = false;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "KL divergence of the posterior to the typical posterior of the predicted class";
  info.paper =
      "Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt & Song, Scaling Out-of-Distribution "
      "Detection for Real-World Settings, ICML";
  info.year = 2022;
  info.doc =
      "p = softmax(logits), k = argmax p, score = KL(p || d_k) = sum_c p_c log(p_c / d_k,c), larger for "
      "outliers. Template d_k = mean of softmax(logits) over the fit samples assigned to class k.\n"
      "fit_on \"predicted\" (default): samples are assigned to their PREDICTED class, as in the paper and "
      "OpenOOD; no labels are needed (OOD-labelled fit samples, label < 0, are still skipped). "
      "fit_on \"labels\": assigned by their label, as pytorch_ood.detector.KLMatching 0.2 (parity).\n"
      "Fitting streams: per-class sums of the posteriors and counts in float64 (C x C + C numbers), no "
      "sample is kept. Scores are computed in float64 (log-softmax, 0 log 0 = 0) and returned in the "
      "logits' dtype.\n"
      "Deviations from pytorch-ood: the default assigns by prediction (pytorch-ood 0.2 uses the labels); "
      "a class without any fit sample gets the mean posterior over all fit samples as template, with a "
      "warning (pytorch-ood raises \"Label k not fitted\" when such a class is predicted).";
  info.params = {ood::ParamSpec::choice("fit_on", {"predicted", "labels"},
                                        "assign fit samples to templates by their predicted class (paper) or "
                                        "their label (pytorch-ood 0.2)")
                     .default_value("predicted")};
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) -> std::shared_ptr<ood::Detector> {
    return std::make_shared<KlMatching>(params.get_string("fit_on") == "labels", params.pointer("fit_on"));
  });
}

}  // namespace

OOD_PLUGIN("kl-matching", "KL matching OOD detector", register_components)
