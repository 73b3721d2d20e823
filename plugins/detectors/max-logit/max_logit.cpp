// MaxLogit: the negative maximum logit, as in pytorch-ood's MaxLogit.
//
//   score(x) = -max_c f(x)_c
//
// Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings",
// ICML 2022.
#include <ATen/ATen.h>

#include "ood/logit_detector.hpp"
#include "ood/plugin.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = "max-logit";
  info.summary = "negative maximum logit, -max logits";
  info.paper =
      "Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt & Song, Scaling "
      "Out-of-Distribution Detection for Real-World Settings, ICML";
  info.year = 2022;
  info.doc = "score = -max_c logits_c, larger for outliers.\nMatches pytorch_ood.detector.MaxLogit.";
  registrar.add_detector(info, [](const ood::Params&, ood::Context&) {
    return std::make_shared<ood::LogitDetector>(
        "max-logit", [](const at::Tensor& logits) { return -std::get<0>(logits.max(1)); });
  });
}

}  // namespace

OOD_PLUGIN("max-logit", "Maximum logit detector", register_components)
