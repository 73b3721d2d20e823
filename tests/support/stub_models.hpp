#pragma once
// Tiny models for plugin tests, whose inputs are their penultimate features so that a
// test hands a component exactly the embedding it means.
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ood/model.hpp"

namespace ood::test {

/// features(x) = x, head(f) = f; reports `classes` classes and `dim` features (losses on
/// an embedding take their sizes from it). Starts in train mode.
class IdentityModel final : public Model {
 public:
  IdentityModel(std::int64_t classes, std::int64_t dim) : classes_(classes), dim_(dim) {}
  at::Tensor features(const at::Tensor& x) override { return x; }
  at::Tensor head(const at::Tensor& f) override { return f; }
  void set_mode(ModelMode m) override { mode_ = m; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {}; }
  TensorDict state_dict() const override { return {}; }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override {
    ModelInfo i;
    i.num_classes = classes_;
    i.feature_dim = dim_;
    return i;
  }

 private:
  std::int64_t classes_, dim_;
  ModelMode mode_ = ModelMode::Train;
};

/// features(x) = x and one linear layer as head, logits = x @ w^T + b (exposed as
/// linear_head()). Starts in eval mode.
class LinearModel final : public Model {
 public:
  LinearModel(at::Tensor w, at::Tensor b) : w_(std::move(w)), b_(std::move(b)) {}
  at::Tensor features(const at::Tensor& inputs) override { return inputs; }
  at::Tensor head(const at::Tensor& f) override { return at::linear(f, w_, b_); }
  std::optional<LinearHead> linear_head() override { return LinearHead{w_, b_}; }
  void set_mode(ModelMode m) override { mode_ = m; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {w_, b_}; }
  TensorDict state_dict() const override { return {}; }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override { return {w_.size(0), w_.size(1), {w_.size(1)}}; }

 private:
  at::Tensor w_, b_;
  ModelMode mode_ = ModelMode::Eval;
};

}  // namespace ood::test
