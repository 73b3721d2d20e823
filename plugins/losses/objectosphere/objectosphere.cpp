// ObjectosphereLoss (Dhamija, Guenther & Boult, "Reducing Network Agnostophobia"):
//
//   l_i = EOS_i + alpha * (relu(xi - ||F_i||)^2 for y_i >= 0, ||F_i||^2 for y_i < 0)
//
// EOS = the entropic open-set loss on the logits, F = the penultimate features.
// reduction over ALL entries. Also the detector `objectosphere`, pytorch-ood's
// ObjectosphereLoss.score: -max_c softmax(z)_c * ||z||_2.
#include <ATen/ATen.h>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/logit_detector.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "objectosphere";

class Objectosphere final : public ood::Loss {
 public:
  Objectosphere(double alpha, double xi, std::string reduction)
      : alpha_(alpha), xi_(xi), reduction_(std::move(reduction)) {}

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    const at::Tensor& features = views.features();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    if (features.size(0) != logits.size(0))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) +
                            " and logits " + ood::describe_tensor(logits) + " differ in the number of samples");
    ood::require_sample_targets(targets, logits, "logits", kName);
    ood::require_targets_below(targets, logits.size(1), kName);
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor known = y >= 0;
    const at::Tensor log_p = at::log_softmax(logits, 1);
    const at::Tensor ce = -log_p.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor eos = at::where(known, ce, -log_p.mean(1));
    const at::Tensor squared = features.pow(2).sum(1);
    // ||F||^2 as a sum of squares (gradient 2F); ||F|| with gradient 0 at F = 0.
    const at::Tensor norm = at::linalg_vector_norm(features, 2, {1});
    const at::Tensor reg = at::where(known, (xi_ - norm).relu().pow(2), squared);
    const at::Tensor per_entry = eos + alpha_ * reg;
    return ood::reduce(per_entry, reduction_);
  }

 private:
  double alpha_, xi_;
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Loss;
    info.name = kName;
    info.summary = "entropic open-set loss plus a feature-magnitude margin (large for IN, zero for outliers)";
    info.paper = "Dhamija, Guenther & Boult, Reducing Network Agnostophobia, NeurIPS";
    info.year = 2018;
    info.doc =
        "l_i = EOS_i + alpha * (relu(xi - ||F_i||_2)^2 if y_i >= 0, ||F_i||_2^2 if y_i < 0),\n"
        "EOS = entropic open-set loss on the logits (cross-entropy for IN, -(1/C) sum_c log softmax\n"
        "for outliers), F = the model's penultimate features.\n"
        "reduction: 'mean' over ALL entries, 'sum', or 'none'. Classification only.\n"
        "Matches pytorch_ood.loss.ObjectosphereLoss. A detector of the same name scores with\n"
        "pytorch-ood's ObjectosphereLoss.score.";
    info.params = {
        ood::ParamSpec::real("alpha", "weight of the feature-magnitude term").default_value(1.0).min(0.0),
        ood::ParamSpec::real("xi", "minimum feature magnitude of IN samples").default_value(1.0).min(0.0),
        ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined")
            .default_value("mean")};
    registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
      return std::make_shared<Objectosphere>(p.get_float("alpha"), p.get_float("xi"), p.get_string("reduction"));
    });
  }
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Detector;
    info.name = kName;
    info.summary = "-max softmax(logits) * ||logits||_2, for networks trained with objectosphere";
    info.paper = "Dhamija, Guenther & Boult, Reducing Network Agnostophobia, NeurIPS";
    info.year = 2018;
    info.doc =
        "score = -max_c softmax(logits)_c * ||logits||_2, larger for outliers, as\n"
        "pytorch_ood.loss.ObjectosphereLoss.score (the paper multiplies the softmax score by the\n"
        "magnitude of the deep features; pytorch-ood uses the logits). The loss has no learned\n"
        "state: `checkpoint` is optional and, when given, only checked to be readable.";
    info.params = {ood::ParamSpec::path("checkpoint", "training state file (optional; the score needs no loss state)")
                       .optional()};
    registrar.add_detector(info, [](const ood::Params& p, ood::Context&) {
      if (p.has("checkpoint")) (void)ood::io::load_state_dict(p.get_path("checkpoint"));
      return std::make_shared<ood::LogitDetector>(kName, [](const at::Tensor& logits) {
        return -std::get<0>(at::softmax(logits, 1).max(1)) * at::linalg_vector_norm(logits, 2, {1});
      });
    });
  }
}

}  // namespace

OOD_PLUGIN("objectosphere", "Objectosphere loss and its detector", register_components)
