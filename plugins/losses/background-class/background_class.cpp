// BackgroundClassLoss as in pytorch-ood: outliers (targets < 0) are mapped to an extra
// class n_classes and the loss is the cross-entropy over n_classes + 1 outputs:
//
//   l_i = -log softmax(z_i)[y'_i],  y'_i = y_i for y_i >= 0, n_classes for y_i < 0
//
// The targets are never modified (pytorch-ood overwrites them in place).
#include <ATen/ATen.h>

#include <optional>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "background-class";

class BackgroundClass final : public ood::Loss {
 public:
  BackgroundClass(std::optional<int64_t> n_classes, std::string pointer, std::string reduction)
      : n_classes_(n_classes), pointer_(std::move(pointer)), reduction_(std::move(reduction)) {}

  void attach(ood::Model& model) override {
    const int64_t outputs = model.info().num_classes;
    if (outputs < 2)
      throw ood::InvalidArgument(pointer_ + ": the model has " + std::to_string(outputs) +
                                 " outputs; background-class needs n_classes + 1 >= 2");
    if (n_classes_ && *n_classes_ != outputs - 1)
      throw ood::InvalidArgument(pointer_ + ": n_classes is " + std::to_string(*n_classes_) + " but the model has " +
                                 std::to_string(outputs) + " outputs (n_classes + 1 with the background class)");
    n_classes_ = outputs - 1;
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    if (!at::isFloatingType(logits.scalar_type()) || (logits.dim() != 2 && logits.dim() != 4))
      throw ood::ShapeError(std::string(kName) + ": logits must be floating [N, C + 1] or [N, C + 1, H, W], got " +
                            ood::describe_tensor(logits));
    const int64_t n_classes = n_classes_ ? *n_classes_ : logits.size(1) - 1;
    if (logits.size(1) != n_classes + 1)
      throw ood::ShapeError(std::string(kName) + ": logits " + ood::describe_tensor(logits) + " must have n_classes + 1 = " +
                            std::to_string(n_classes + 1) + " outputs");
    ood::require_dense_targets(targets, logits, kName);
    if (targets.numel() > 0 && (targets >= n_classes).any().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": a target is >= n_classes " + std::to_string(n_classes) +
                            " (the background class is for outliers, targets < 0)");
    const at::Tensor y = targets.to(logits.device(), at::kLong);
    const at::Tensor mapped = at::where(y < 0, at::full_like(y, n_classes), y);  // a new tensor
    const at::Tensor per_entry = -at::log_softmax(logits, 1).gather(1, mapped.unsqueeze(1)).squeeze(1);
    return ood::reduce(per_entry, reduction_);
  }

 private:
  std::optional<int64_t> n_classes_;
  std::string pointer_;
  std::string reduction_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Loss;
  info.name = kName;
  info.summary = "cross-entropy with an extra background class for outliers";
  info.doc =
      "l_i = -log softmax(z_i)[y'_i] with y'_i = y_i for IN samples and n_classes for outliers\n"
      "(y_i < 0); the model has n_classes + 1 outputs. reduction: 'mean' over ALL entries,\n"
      "'sum', or 'none'. Classification and segmentation (class axis 1).\n"
      "n_classes is optional: the model's outputs minus one (checked when given).\n"
      "Matches pytorch_ood.loss.BackgroundClassLoss, except that the targets are not\n"
      "overwritten in place (pytorch-ood writes n_classes into the caller's tensor).";
  info.params = {
      ood::ParamSpec::integer("n_classes", "number of IN classes (the model's outputs minus one when absent)")
          .optional()
          .min(1),
      ood::ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how entries are combined").default_value("mean")};
  registrar.add_loss(info, [](const ood::Params& p, ood::Context&) {
    std::optional<int64_t> n;
    if (p.has("n_classes")) n = p.get_int("n_classes");
    return std::make_shared<BackgroundClass>(n, p.pointer("n_classes"), p.get_string("reduction"));
  });
}

}  // namespace

OOD_PLUGIN("background-class", "Background-class loss", register_components)
