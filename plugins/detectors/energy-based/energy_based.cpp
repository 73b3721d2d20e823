// EnergyBased: the free energy of the logits, as in pytorch-ood's EnergyBased.
//
//   score(x) = -t * logsumexp(f(x) / t)
//
// Liu, Wang, Owens & Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020.
// logsumexp subtracts the maximum first, so large logits do not overflow.
#include <ATen/ATen.h>

#include "ood/logit_detector.hpp"
#include "ood/plugin.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = "energy-based";
  info.summary = "free energy of the logits, -t * logsumexp(logits / t)";
  info.paper = "Liu, Wang, Owens & Li, Energy-based Out-of-distribution Detection, NeurIPS";
  info.year = 2020;
  info.doc =
      "score = -t * logsumexp_c(logits_c / t), larger for outliers.\n"
      "Matches pytorch_ood.detector.EnergyBased.";
  info.params = {ood::ParamSpec::real("t", "temperature").default_value(1.0).min(0.0, true)};
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    const double t = params.get_float("t");
    return std::make_shared<ood::LogitDetector>("energy-based", [t](const at::Tensor& logits) {
      return -t * at::logsumexp(logits / t, 1);
    });
  });
}

}  // namespace

OOD_PLUGIN("energy-based", "Energy-based detector", register_components)
