// EnergyRegularizedLoss (energy-bounded learning, Liu, Wang, Owens & Li):
//
//   E(x) = -logsumexp_c z_c
//   classification: l_i = CE_i + alpha * reg_i,
//     reg_i = relu(E_i - m_in)^2 for y_i >= 0, relu(m_out - E_i)^2 for y_i < 0, CE_i = 0 for OOD
//   segmentation (logits [N, C, H, W]): reg = mean_IN relu(E - m_in)^2 + mean_OOD relu(m_out - E)^2
//     (a mean over the IN / OOD pixels of the batch, 0 without such pixels), a scalar added to
//     every pixel's CE_p before the reduction, as pytorch-ood does.
//
// Deviation (POLICY.md): on segmentation logits pytorch-ood's OOD term is
// relu(-logsumexp(m_out - z))^2, the energy of (m_out - logits) instead of m_out - E(x);
// ood uses the energy of the logits for both terms, as the paper and the classification case.
#include <ATen/ATen.h>

#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "energy-regularized";

class EnergyRegularized final : public ood::Loss {
 public:
  EnergyRegularized(double alpha, double m_in, double m_out, std::string reduction)
      : alpha_(alpha), m_in_(m_in), m_out_(m_out), reduction_(std::move(reduction)) {}

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    ood::check_dense_logits_and_targets(logits, targets, kName);
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor known = y >= 0;
    const at::Tensor log_p = at::log_softmax(logits, 1);
    const at::Tensor picked = -log_p.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor ce = at::where(known, picked, at::zeros_like(picked));
    const at::Tensor energy = -at::logsumexp(logits, {1});
    const at::Tensor reg_in = (energy - m_in_).relu().pow(2);
    const at::Tensor reg_out = (m_out_ - energy).relu().pow(2);
    at::Tensor per_entry;
    if (logits.dim() == 2) {
      per_entry = ce + alpha_ * at::where(known, reg_in, reg_out);
    } else {
      // Means over the IN and the OOD pixels of the batch (0 where there are none).
      const at::Tensor kf = known.to(logits.scalar_type());
      const at::Tensor uf = 1 - kf;
      const at::Tensor n_in = kf.sum().clamp_min(1), n_out = uf.sum().clamp_min(1);
      const at::Tensor reg = (at::where(known, reg_in, at::zeros_like(reg_in)).sum() / n_in) +
                             (at::where(known, at::zeros_like(reg_out), reg_out).sum() / n_out);
      per_entry = ce + alpha_ * reg;
    }
    return ood::reduce(per_entry, reduction_);
  }

 private:
  double alpha_, m_in_, m_out_;
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "cross-entropy plus squared hinges on the energy of IN (above m_in) and OOD (below m_out) samples";
  info.paper = "Liu, Wang, Owens & Li, Energy-based Out-of-distribution Detection, NeurIPS";
  info.year = 2020;
  info.doc =
      "E(x) = -logsumexp_c z_c.\n"
      "Classification: l_i = CE_i + alpha * (relu(E_i - margin_in)^2 if y_i >= 0,\n"
      "  relu(margin_out - E_i)^2 if y_i < 0), CE_i = 0 for outliers.\n"
      "Segmentation ([N, C, H, W] logits, [N, H, W] targets): reg = mean over IN pixels of\n"
      "  relu(E - margin_in)^2 + mean over OOD pixels of relu(margin_out - E)^2 (0 without such\n"
      "  pixels), a scalar added to every pixel's CE before the reduction (as pytorch-ood).\n"
      "reduction: 'mean' over ALL entries, 'sum', or 'none'.\n"
      "Matches pytorch_ood.loss.EnergyRegularizedLoss on classification. Deviation: on\n"
      "segmentation pytorch-ood's OOD term is relu(-logsumexp(margin_out - z))^2 (the energy of\n"
      "margin_out - logits); ood uses relu(margin_out - E)^2, the energy of the logits, as the\n"
      "paper and the classification case.";
  info.params = {
      ood::ParamSpec::real("alpha", "weight of the energy regulariser").default_value(1.0).min(0.0),
      ood::ParamSpec::real("margin_in", "energy margin m_in for IN samples").default_value(-1.0),
      ood::ParamSpec::real("margin_out", "energy margin m_out for OOD samples").default_value(-1.0),
      ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined").default_value("mean")};
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<EnergyRegularized>(p.get_float("alpha"), p.get_float("margin_in"),
                                               p.get_float("margin_out"), p.get_string("reduction"));
  });
}

}  // namespace

OOD_PLUGIN("energy-regularized", "Energy-regularized (energy-bounded) loss", register_components)
