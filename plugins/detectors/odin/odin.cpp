// ODIN (Liang, Li & Srikant, "Enhancing The Reliability of Out-of-distribution Image
// Detection in Neural Networks", ICLR 2018), as the paper defines it:
//
//   S(x; T)  = softmax(f(x) / T),   y_hat = argmax_c f(x)_c
//   x_hat    = x - eps * sign(grad_x CE(S(x; T), y_hat)) / norm_std[channel]
//            = x + eps * sign(grad_x log S_y_hat(x; T)) / norm_std[channel]
//   score(x) = -max_c S(x_hat; T)_c
//
// pytorch-ood 0.2 departs from it (POLICY.md): its default criterion applies nll_loss to
// the raw scaled logits (no log-softmax: the step follows -grad f_y_hat) and its final
// softmax ignores T, so T changes nothing there. The fixture's scores are therefore not a
// target; the tests compare with the definition computed from the model.
//
// One forward and backward pass (input gradients only) and one forward per batch.
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/input_perturbation.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "odin";

class Odin final : public ood::Detector {
 public:
  Odin(double temperature, ood::InputPerturbation perturbation)
      : t_(temperature), perturbation_(std::move(perturbation)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.logits = !perturbation_.enabled();  // without a perturbation ODIN is the tempered MSP of the shared logits
    n.input_gradients = perturbation_.enabled();
    return n;
  }

  void attach(ood::Model& model) override { perturbation_.check_model(model.info()); }

  at::Tensor score(ood::Views& views) override {
    if (!perturbation_.enabled()) return tempered_msp(views.logits());
    if (!views.has_model())
      throw ood::StateError(std::string(kName) + ": needs the model for input gradients, and there is none");
    ood::Model& model = views.model();
    const at::Tensor x_hat = perturbation_.apply(
        views.inputs(),
        [&](const at::Tensor& x) {
          const at::Tensor logits = model.logits(x);
          ood::require_floating(logits, kName, "logits", 2, "[N, C]");
          const at::Tensor scaled = logits.to(at::kDouble) / t_;
          const at::Tensor predicted = logits.detach().argmax(1);
          // Cross-entropy of softmax(f(x) / T) at the predicted class, summed over the batch
          // (each sample's gradient depends only on its own term).
          return -at::log_softmax(scaled, 1).gather(1, predicted.unsqueeze(1)).sum();
        },
        kName);
    at::NoGradGuard no_grad;
    return tempered_msp(model.logits(x_hat));
  }

 private:
  at::Tensor tempered_msp(const at::Tensor& logits) const {
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    return -std::get<0>(at::softmax(logits.to(at::kDouble) / t_, 1).max(1));
  }

  double t_;
  ood::InputPerturbation perturbation_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "tempered maximum softmax after a small input step that raises it";
  info.paper =
      "Liang, Li & Srikant, Enhancing The Reliability of Out-of-distribution Image Detection in Neural "
      "Networks, ICLR";
  info.year = 2018;
  info.doc =
      "x_hat = x - eps * sign(grad_x CE(softmax(f(x) / T), y_hat)) / norm_std[channel], y_hat = argmax f(x);\n"
      "score = -max_c softmax(f(x_hat) / T)_c, larger for outliers (computed in float64).\n"
      "One forward and backward pass (input gradients only, parameters untouched) plus one forward\n"
      "per batch; eps = 0 gives the tempered MSP of the shared logits without extra passes.\n"
      "Follows the paper, not pytorch_ood.detector.ODIN 0.2: pytorch-ood applies nll_loss to the raw\n"
      "scaled logits (the step follows -grad f_y_hat instead of the cross-entropy's gradient) and drops\n"
      "T from the final softmax, so T changes nothing there; here T acts in both places.";
  info.params = {
      ood::ParamSpec::real("eps", "size of the input step (0: none)").default_value(0.05).min(0.0),
      ood::ParamSpec::real("temperature", "temperature T dividing the logits").default_value(1000.0).min(0.0, true),
      ood::InputPerturbation::norm_std_param("the step"),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Odin>(params.get_float("temperature"), ood::InputPerturbation::from_params(params));
  });
}

}  // namespace

OOD_PLUGIN("odin", "ODIN detector", register_components)
