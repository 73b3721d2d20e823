// OutlierExposureLoss (Hendrycks, Mazeika & Dietterich) as in pytorch-ood:
//
//   l_i = -log softmax(z_i)[y_i]                         for y_i >= 0
//   l_i = alpha * (logsumexp_c z_ic - mean_c z_ic)        for y_i < 0  (cross-entropy to
//                                                          the uniform distribution)
//
// reduction over ALL entries (OOD ones contribute their own term). Classification
// (logits [N, C], targets [N]) and segmentation (logits [N, C, H, W], targets [N, H, W]).
#include <ATen/ATen.h>

#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "outlier-exposure";

class OutlierExposure final : public ood::Loss {
 public:
  OutlierExposure(double alpha, std::string reduction) : alpha_(alpha), reduction_(std::move(reduction)) {}

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    ood::check_dense_logits_and_targets(logits, targets, kName);
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor known = y >= 0;
    const at::Tensor log_p = at::log_softmax(logits, 1);
    const at::Tensor ce = -log_p.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor oe = at::logsumexp(logits, {1}) - logits.mean(1);
    const at::Tensor per_entry = at::where(known, ce, alpha_ * oe);
    return ood::reduce(per_entry, reduction_);
  }

 private:
  double alpha_;
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "cross-entropy on IN samples, cross-entropy to the uniform posterior on outliers";
  info.paper = "Hendrycks, Mazeika & Dietterich, Deep Anomaly Detection with Outlier Exposure, ICLR";
  info.year = 2019;
  info.doc =
      "l_i = -log softmax(z_i)[y_i] for y_i >= 0;\n"
      "l_i = alpha * (logsumexp_c z_ic - mean_c z_ic) for outliers (y_i < 0),\n"
      "the cross-entropy between softmax(z_i) and the uniform distribution.\n"
      "reduction: 'mean' over ALL entries (IN and OOD), 'sum', or 'none' (per entry).\n"
      "Classification ([N, C] logits, [N] targets) and segmentation ([N, C, H, W], [N, H, W]).\n"
      "Matches pytorch_ood.loss.OutlierExposureLoss.";
  info.params = {
      ood::ParamSpec::real("alpha", "weight of the outlier term").default_value(0.5).min(0.0),
      ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined").default_value("mean")};
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<OutlierExposure>(p.get_float("alpha"), p.get_string("reduction"));
  });
}

}  // namespace

OOD_PLUGIN("outlier-exposure", "Outlier exposure loss", register_components)
