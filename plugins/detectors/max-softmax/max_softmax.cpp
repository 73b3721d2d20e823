// MaxSoftmax (maximum softmax probability, MSP) as in pytorch-ood's MaxSoftmax.
//
//   score(x) = -max_c softmax(f(x) / t)_c
//
// Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
// Examples in Neural Networks", ICLR 2017; the temperature t as in ODIN (Liang et al.).
#include <ATen/ATen.h>

#include "ood/logit_detector.hpp"
#include "ood/plugin.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = "max-softmax";
  info.summary = "negative maximum softmax probability, -max softmax(logits / t)";
  info.paper =
      "Hendrycks & Gimpel, A Baseline for Detecting Misclassified and Out-of-Distribution "
      "Examples in Neural Networks, ICLR";
  info.year = 2017;
  info.doc =
      "score = -max_c softmax(logits / t)_c, larger for outliers.\n"
      "Matches pytorch_ood.detector.MaxSoftmax (float32, t applied before the softmax).";
  info.params = {ood::ParamSpec::real("t", "temperature dividing the logits").default_value(1.0).min(0.0, true)};
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    const double t = params.get_float("t");
    return std::make_shared<ood::LogitDetector>("max-softmax", [t](const at::Tensor& logits) {
      return -std::get<0>(at::softmax(logits / t, 1).max(1));
    });
  });
}

}  // namespace

OOD_PLUGIN("max-softmax", "Maximum softmax probability detector", register_components)
