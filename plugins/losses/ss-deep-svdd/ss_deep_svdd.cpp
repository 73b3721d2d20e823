// Semi-supervised Deep SVDD (Deep SAD), as pytorch-ood's SSDeepSVDDLoss except for the
// definition of the terms (parity policy): the IN term is the squared distance and the OOD
// term its reciprocal (pytorch-ood squares the squared distance in both). A detector of the
// same name scores with the distance to the centre.
//
//   d_i = ||z_i - c||^2; loss_i = relu(d_i - r^2) for IN samples (= d_i with the default r = 0),
//   1 / d_i for OOD samples (y < 0)
//   score = ||z - c||^2 - r^2
//
// Ruff, Vandermeulen, Goernitz, Binder, Mueller, Mueller & Kloft, "Deep Semi-Supervised
// Anomaly Detection", ICLR 2020.
#include <ATen/ATen.h>

#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"

namespace {

constexpr const char* kName = "ss-deep-svdd";

// The centre, radius, IN term, state and detector are ood::HypersphereLoss's; Deep SAD
// pushes outliers away with the reciprocal of their squared distance.
class SsDeepSvdd final : public ood::HypersphereLoss {
 public:
  using HypersphereLoss::HypersphereLoss;

 protected:
  at::Tensor outlier_term(const at::Tensor& sq, const at::Tensor& known) const override {
    // the reciprocal of an IN row is never used: 1 there keeps its gradient finite
    return 1.0 / at::where(known, at::ones_like(sq), sq);
  }
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.name = kName;
  info.summary = "semi-supervised Deep SVDD (Deep SAD): IN samples pulled to a centre, outliers pushed away";
  info.paper = "Ruff, Vandermeulen, Goernitz, Binder, Mueller, Mueller & Kloft, Deep Semi-Supervised Anomaly "
               "Detection, ICLR";
  info.year = 2020;
  info.doc =
      "d_i = ||z_i - c||^2; loss_i = relu(d_i - r^2) for IN samples (d_i with the default r = 0) and\n"
      "1 / d_i for OOD samples (y < 0); reduction 'mean' divides by all samples. z = the embedding, c fixed.\n"
      "Deviation from pytorch_ood.loss.SSDeepSVDDLoss (parity policy, Deep SAD's definition): pytorch-ood\n"
      "uses d_i^2 and 1 / d_i^2. pytorch-ood has no radius: 'radius' (default 0) only relaxes the IN term,\n"
      "as deep-svdd. Without 'center', c is the mean embedding of the IN samples of the first training\n"
      "batch (the initialisation of Deep SVDD and Deep SAD; pytorch-ood draws it at random), kept as\n"
      "state. State: '_center._params' [1, D] (pytorch-ood's name).";

  ood::ComponentInfo det;
  det.name = kName;
  det.summary = "squared distance to the centre of a trained semi-supervised Deep SVDD loss";
  det.paper = info.paper;
  det.year = info.year;
  det.doc =
      "score = ||z - c||^2 - r^2 (larger for outliers); c = the centre from the training state file\n"
      "(entry 'loss._center._params') or the 'center' parameter; z = the embedding the loss was trained on.";

  ood::register_hypersphere(registrar, info, det, "n_features", [](ood::HypersphereLoss::Config cfg) {
    return std::make_shared<SsDeepSvdd>(std::move(cfg));
  });
}

}  // namespace

OOD_PLUGIN("ss-deep-svdd", "Semi-supervised Deep SVDD (Deep SAD) loss and detector", register_components)
