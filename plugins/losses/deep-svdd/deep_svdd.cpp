// One-class Deep SVDD loss, as pytorch-ood's DeepSVDDLoss, with the paper's centre
// initialisation when no centre is given, and a detector scoring with the distance to
// the centre.
//
//   d_i = ||z_i - c||^2; loss_i = relu(d_i - r^2) for IN samples, 0 for OOD samples (y < 0)
//   score = ||z - c||^2 - r^2                                       (DeepSVDDLoss.distance)
//
// Ruff, Vandermeulen, Goernitz, Deecke, Siddiqui, Binder, Mueller & Kloft, "Deep One-Class
// Classification", ICML 2018.
#include <ATen/ATen.h>

#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"

namespace {

constexpr const char* kName = "deep-svdd";

// The centre, radius, state and detector are ood::HypersphereLoss's; Deep SVDD ignores
// OOD samples.
class DeepSvdd final : public ood::HypersphereLoss {
 public:
  using HypersphereLoss::HypersphereLoss;

 protected:
  at::Tensor outlier_term(const at::Tensor& sq, const at::Tensor& /*known*/) const override {
    return at::zeros_like(sq);
  }
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.name = kName;
  info.summary = "one-class Deep SVDD: squared distance to a fixed centre beyond a radius";
  info.paper = "Ruff, Vandermeulen, Goernitz, Deecke, Siddiqui, Binder, Mueller & Kloft, Deep One-Class "
               "Classification, ICML";
  info.year = 2018;
  info.doc =
      "loss_i = relu(||z_i - c||^2 - r^2) for IN samples, 0 for OOD samples (y < 0); reduction 'mean'\n"
      "divides by all samples. z = the embedding; c fixed (not learnable), r = radius (float32, as\n"
      "pytorch_ood.loss.DeepSVDDLoss keeps it: parity). Without 'center', c is the paper's initialisation:\n"
      "the mean embedding of the IN samples of the first training batch, kept as state (a batch without\n"
      "IN samples before that gives 0). State: '_center._params' [1, D] (pytorch-ood's name).";

  ood::ComponentInfo det;
  det.name = kName;
  det.summary = "squared distance to the centre of a trained Deep SVDD loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = ||z - c||^2 - r^2 (DeepSVDDLoss.distance, larger for outliers); c = the centre from the\n"
      "training state file (entry 'loss._center._params') or the 'center' parameter; z = the embedding\n"
      "the loss was trained on.";

  ood::register_hypersphere(registrar, info, det, "n_dim", [](ood::HypersphereLoss::Config cfg) {
    return std::make_shared<DeepSvdd>(std::move(cfg));
  });
}

}  // namespace

OOD_PLUGIN("deep-svdd", "Deep SVDD loss and detector", register_components)
