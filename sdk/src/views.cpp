#include "ood/views.hpp"

#include <ATen/ATen.h>

#include <algorithm>

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
    // One forward for every view: with a feature map, the features are its pooling.
    features_ = model_->has_feature_map() ? model_->pool(feature_map()) : model_->features(inputs());
  }
  return *features_;
}

const at::Tensor& Views::feature_map() {
  if (!feature_map_) {
    if (!model_)
      throw StateError("views: the feature map was requested but neither given nor computable (no model)");
    at::AutoGradMode grad_mode(track_gradients_);
    feature_map_ = model_->features_before_pool(inputs());
  }
  return *feature_map_;
}

void Views::prefetch_layers(const std::vector<std::string>& names) {
  std::vector<std::string> missing;
  for (const auto& n : names)
    if (!layers_.contains(n) && std::find(missing.begin(), missing.end(), n) == missing.end()) missing.push_back(n);
  if (missing.empty()) return;
  if (!model_) throw StateError("views: layer '" + missing.front() + "' was requested but neither given nor computable (no model)");
  at::AutoGradMode grad_mode(track_gradients_);
  const TensorDict out = model_->intermediate(inputs(), missing);
  for (const auto& n : missing) {
    if (!out.contains(n)) throw StateError("views: the model did not return layer '" + n + "'");
    layers_.set(n, out.at(n));
  }
}

const at::Tensor& Views::layer(const std::string& name) {
  if (!layers_.contains(name)) prefetch_layers({name});
  return layers_.at(name);
}

const at::Tensor& Views::logits() {
  if (!logits_) {
    if (!model_ && !features_)
      throw StateError("views: logits were requested but neither given nor computable (no model)");
    if (!model_) throw StateError("views: logits need the model's head, and there is no model");
    if (!model_->logits_from_features()) {
      at::AutoGradMode grad_mode(track_gradients_);
      logits_ = model_->logits(inputs());
      return *logits_;
    }
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
void Views::set_feature_map(at::Tensor feature_map) { feature_map_ = std::move(feature_map); }
void Views::set_layer(const std::string& name, at::Tensor output) { layers_.set(name, std::move(output)); }

}  // namespace ood
