// EntropicOpenSetLoss (Dhamija, Guenther & Boult, "Reducing Network Agnostophobia"):
//
//   l_i = -log softmax(z_i)[y_i]             for y_i >= 0
//   l_i = -(1/C) sum_c log softmax(z_i)_c    for y_i < 0
//
// reduction over ALL entries; classification and segmentation (class axis 1).
// Also the detector `entropic-open-set`: score = -max_c softmax(z)_c (the paper thresholds
// the maximum softmax probability of a network trained with this loss).
#include <ATen/ATen.h>

#include "ood/detector.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/logit_detector.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "entropic-open-set";

class EntropicOpenSet final : public ood::Loss {
 public:
  explicit EntropicOpenSet(std::string reduction) : reduction_(std::move(reduction)) {}

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    ood::check_dense_logits_and_targets(logits, targets, kName);
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor log_p = at::log_softmax(logits, 1);
    const at::Tensor ce = -log_p.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor uniform = -log_p.mean(1);
    const at::Tensor per_entry = at::where(y >= 0, ce, uniform);
    return ood::reduce(per_entry, reduction_);
  }

 private:
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Loss;
    info.name = kName;
    info.summary = "cross-entropy on IN samples, uniform posterior (maximum entropy) on outliers";
    info.paper = "Dhamija, Guenther & Boult, Reducing Network Agnostophobia, NeurIPS";
    info.year = 2018;
    info.doc =
        "l_i = -log softmax(z_i)[y_i] for y_i >= 0; l_i = -(1/C) sum_c log softmax(z_i)_c for outliers.\n"
        "reduction: 'mean' over ALL entries (IN and OOD), 'sum', or 'none'.\n"
        "Classification and segmentation (class axis 1).\n"
        "Matches pytorch_ood.loss.EntropicOpenSetLoss. A detector of the same name scores\n"
        "networks trained with it.";
    info.params = {ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined")
                       .default_value("mean")};
    registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
      return std::make_shared<EntropicOpenSet>(p.get_string("reduction"));
    });
  }
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Detector;
    info.name = kName;
    info.summary = "negative maximum softmax probability of a network trained with entropic-open-set";
    info.paper = "Dhamija, Guenther & Boult, Reducing Network Agnostophobia, NeurIPS";
    info.year = 2018;
    info.doc =
        "score = -max_c softmax(logits)_c, larger for outliers: the paper thresholds the\n"
        "maximum softmax probability of a network trained with the entropic open-set loss\n"
        "(pytorch-ood defines no score of its own for this loss). The loss has no learned\n"
        "state: `checkpoint` is optional and, when given, only checked to be readable.";
    info.params = {ood::ParamSpec::path("checkpoint", "training state file (optional; the score needs no loss state)")
                       .optional()};
    registrar.add_detector(info, [](const ood::Params& p, ood::Context&) {
      if (p.has("checkpoint")) (void)ood::io::load_state_dict(p.get_path("checkpoint"));
      return std::make_shared<ood::LogitDetector>(kName, [](const at::Tensor& logits) {
        return -std::get<0>(at::softmax(logits, 1).max(1));
      });
    });
  }
}

}  // namespace

OOD_PLUGIN("entropic-open-set", "Entropic open-set loss and its detector", register_components)
