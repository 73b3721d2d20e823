// Cross-entropy that ignores OOD samples, as pytorch-ood's CrossEntropyLoss:
//
//   l_i = -log softmax(z_i)_{y_i} for y_i >= 0, and 0 for OOD samples (y_i < 0);
//   "mean" divides the sum by the number of ALL entries, OOD ones included (unlike
//   torch's ignore_index mean, which divides by the kept entries only).
//
// Works for classification (logits [N, C], targets [N]) and segmentation (logits
// [N, C, H, W], targets [N, H, W]).
#include <ATen/ATen.h>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

class CrossEntropy final : public ood::Loss {
 public:
  explicit CrossEntropy(std::string reduction) : reduction_(std::move(reduction)) {}

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    if (!at::isFloatingType(logits.scalar_type()) || logits.dim() < 2)
      throw ood::ShapeError("cross-entropy: logits must be floating [N, C, ...], got " + ood::describe_tensor(logits));
    if (at::isFloatingType(targets.scalar_type()) || targets.dim() != logits.dim() - 1 ||
        targets.size(0) != logits.size(0))
      throw ood::ShapeError("cross-entropy: targets must be integers [N, ...] matching logits " +
                            ood::describe_tensor(logits) + ", got " + ood::describe_tensor(targets));
    const at::Tensor y = targets.to(at::kLong);
    if ((y >= logits.size(1)).any().item<bool>())
      throw ood::ShapeError("cross-entropy: a target is >= the number of classes " + std::to_string(logits.size(1)));
    const at::Tensor known = y >= 0;
    const at::Tensor log_p = at::log_softmax(logits, 1);
    const at::Tensor picked = log_p.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);
    const at::Tensor per_entry = at::where(known, -picked, at::zeros_like(picked));
    if (reduction_ == "none") return per_entry;
    if (reduction_ == "sum") return per_entry.sum();
    return per_entry.mean();
  }

 private:
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = "cross-entropy";
  info.summary = "cross-entropy that ignores OOD samples (targets < 0)";
  info.doc =
      "l_i = -log softmax(logits_i)[y_i] for y_i >= 0, 0 for OOD samples.\n"
      "reduction 'mean' divides by the number of all entries, OOD ones included,\n"
      "as pytorch_ood.loss.CrossEntropyLoss does.";
  info.params = {ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined")
                     .default_value("mean")};
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    return std::make_shared<CrossEntropy>(p.get_string("reduction"));
  });
}

}  // namespace

OOD_PLUGIN("cross-entropy", "OOD-ignoring cross-entropy loss", register_components)
