#include "ood/views.hpp"

#include <ATen/ATen.h>

#include "ood/error.hpp"
#include "ood/model.hpp"

namespace ood {

Views::Views(Model& model, at::Tensor inputs, bool track_gradients)
    : model_(&model), track_gradients_(track_gradients), inputs_(std::move(inputs)) {}

Views::Views() = default;
Views::~Views() = default;

const at::Tensor& Views::inputs() const {
  if (!inputs_) throw StateError("views: no model inputs were given for this batch");
  return *inputs_;
}

const at::Tensor& Views::features() {
  if (!features_) {
    if (!model_) throw StateError("views: features were requested but neither given nor computable (no model)");
    at::AutoGradMode grad_mode(track_gradients_);
    features_ = model_->features(inputs());
  }
  return *features_;
}

const at::Tensor& Views::logits() {
  if (!logits_) {
    if (!model_ && !features_)
      throw StateError("views: logits were requested but neither given nor computable (no model)");
    if (!model_) throw StateError("views: logits need the model's head, and there is no model");
    const at::Tensor& f = features();
    at::AutoGradMode grad_mode(track_gradients_);
    logits_ = model_->head(f);
  }
  return *logits_;
}

Model& Views::model() const {
  if (!model_) throw StateError("views: this detector needs the model, and there is none");
  return *model_;
}

std::int64_t Views::batch_size() const {
  if (inputs_) return inputs_->size(0);
  if (logits_) return logits_->size(0);
  if (features_) return features_->size(0);
  return 0;
}

void Views::set_inputs(at::Tensor inputs) { inputs_ = std::move(inputs); }
void Views::set_features(at::Tensor features) { features_ = std::move(features); }
void Views::set_logits(at::Tensor logits) { logits_ = std::move(logits); }

}  // namespace ood
