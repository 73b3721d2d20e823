#pragma once
// A small linear "network" for tests of the gradient-based detectors (odin, mahalanobis,
// multi-mahalanobis, rmd), where every quantity has a closed form:
//
//   features(x) = flatten(x) @ A^T          [N, D]
//   head(z)     = z @ W^T + b               [N, K]
//   layers: "input" = x itself [N, C, H, W] (its spatial mean is the per-channel mean),
//           "features" = features(x) [N, D]
//
// The tensors are float64 so that test references can be computed exactly.
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "ood/error.hpp"
#include "ood/model.hpp"

namespace ood::test {

class LinearTestModel final : public Model {
 public:
  LinearTestModel(std::int64_t channels, std::int64_t side, std::int64_t dim, std::int64_t classes,
                  std::uint64_t seed)
      : c_(channels), side_(side) {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const std::int64_t in = channels * side * side;
    a_ = at::randn({dim, in}, gen, at::kDouble) / std::sqrt(static_cast<double>(in));
    w_ = at::randn({classes, dim}, gen, at::kDouble);
    b_ = at::randn({classes}, gen, at::kDouble) * 0.1;
  }

  const at::Tensor& a() const { return a_; }
  const at::Tensor& w() const { return w_; }
  const at::Tensor& b() const { return b_; }

  at::Tensor features(const at::Tensor& inputs) override {
    if (inputs.dim() != 4 || inputs.size(1) != c_) throw ShapeError("linear test model: bad inputs");
    return at::mm(inputs.flatten(1), a_.t());
  }
  at::Tensor head(const at::Tensor& features) override { return at::addmm(b_, features, w_.t()); }
  std::optional<LinearHead> linear_head() override { return LinearHead{w_, b_}; }
  std::vector<std::string> layer_names() const override { return {"input", "features"}; }
  TensorDict intermediate(const at::Tensor& inputs, const std::vector<std::string>& layers) override {
    TensorDict out;
    for (const auto& l : layers) {
      if (l == "input")
        out.set(l, inputs * 1.0);
      else if (l == "features")
        out.set(l, features(inputs));
      else
        throw InvalidArgument("linear test model: no layer '" + l + "'");
    }
    return out;
  }
  void set_mode(ModelMode mode) override { mode_ = mode; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {}; }
  TensorDict state_dict() const override {
    TensorDict d;
    d.set("a", a_);
    d.set("w", w_);
    d.set("b", b_);
    return d;
  }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override { return ModelInfo{w_.size(0), a_.size(0), {c_, side_, side_}}; }

 private:
  std::int64_t c_, side_;
  at::Tensor a_, w_, b_;
  ModelMode mode_ = ModelMode::Eval;
};

}  // namespace ood::test
