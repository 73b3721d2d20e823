// ConfidenceLoss (DeVries & Taylor, "Learning Confidence for Out-of-Distribution Detection
// in Neural Networks", 2018) with its learned confidence branch:
//
//   c_i = sigmoid(w . F_i + b)       F = penultimate features, (w, b) learned by the loss
//   loss = (1/N) sum_{IN} -log(clamp(c p_y + (1 - c), eps, 1)) + alpha (1/N) sum_i -log(clamp(c_i, eps, 1))
//
// (confidence_formula.hpp). The branch (a linear layer D -> 1, PyTorch's nn.Linear
// initialisation from the component's seed) is created in attach(), returned by
// parameters() and saved in state() as branch.weight [1, D] and branch.bias [1].
// Also the detector `confidence`: score = -c with the trained branch of a checkpoint.
#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "confidence_formula.hpp"
#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/loss.hpp"
#include "ood/loss_support.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "confidence";

class Confidence final : public ood::Loss {
 public:
  Confidence(double alpha, double eps, std::uint64_t seed) : alpha_(alpha), eps_(eps), seed_(seed) {}

  void attach(ood::Model& model) override {
    const int64_t d = model.info().feature_dim;
    if (d < 1) throw ood::InvalidArgument(std::string(kName) + ": the model reports no penultimate features");
    if (weight_.defined() && weight_.size(1) == d) return;  // already loaded with the right size
    create(d, model.device());
  }

  std::vector<at::Tensor> parameters() override {
    if (!weight_.defined()) return {};
    return {weight_, bias_};
  }

  at::Tensor forward(ood::Views& views, const at::Tensor& targets) override {
    const at::Tensor& logits = views.logits();
    const at::Tensor& features = views.features();
    ood::require_floating(logits, kName, "logits", 2, "[N, C]");
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    if (features.size(0) != logits.size(0))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) + " and logits " +
                            ood::describe_tensor(logits) + " differ in the number of samples");
    ood::require_sample_targets(targets, logits, "logits", kName);
    ood::require_targets_below(targets, logits.size(1), kName);
    if (!weight_.defined()) create(features.size(1), features.device());  // offline use without attach()
    if (features.size(1) != weight_.size(1))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) +
                            " do not match the confidence branch [1, " + std::to_string(weight_.size(1)) + "]");
    const at::Tensor w = weight_.to(features.device(), features.scalar_type());
    const at::Tensor b = bias_.to(features.device(), features.scalar_type());
    const at::Tensor c = at::sigmoid(at::addmm(b, features, w.t())).squeeze(1);
    return ood_confidence::confidence_loss(logits, c.to(logits.scalar_type()), targets, alpha_, eps_);
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (weight_.defined()) {
      out.set("branch.weight", weight_.detach());
      out.set("branch.bias", bias_.detach());
    }
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    if (saved.size() != 2 || !saved.contains("branch.weight") || !saved.contains("branch.bias"))
      throw ood::StateError(std::string(kName) + ": expected the state {branch.weight [1, D], branch.bias [1]}, got " +
                            std::to_string(saved.size()) + " entries");
    const at::Tensor& w = saved.at("branch.weight");
    const at::Tensor& b = saved.at("branch.bias");
    if (!at::isFloatingType(w.scalar_type()) || w.dim() != 2 || w.size(0) != 1 ||
        (weight_.defined() && w.size(1) != weight_.size(1)) || !at::isFloatingType(b.scalar_type()) ||
        b.dim() != 1 || b.size(0) != 1)
      throw ood::StateError(std::string(kName) + ": state branch.weight " + ood::describe_tensor(w) +
                            " / branch.bias " + ood::describe_tensor(b) + " do not fit the branch [1, " +
                            (weight_.defined() ? std::to_string(weight_.size(1)) : std::string("D")) + "], [1]");
    const at::Device device = weight_.defined() ? weight_.device() : at::Device(at::kCPU);
    if (weight_.defined()) {
      // Keep the tensors the optimiser holds: copy in place.
      at::NoGradGuard no_grad;
      weight_.copy_(w);
      bias_.copy_(b);
    } else {
      weight_ = w.detach().clone().to(device).requires_grad_(true);
      bias_ = b.detach().clone().to(device).requires_grad_(true);
    }
  }

 private:
  void create(int64_t d, at::Device device) {
    // PyTorch's nn.Linear(d, 1) initialisation: weight and bias uniform in +-1/sqrt(d).
    at::Generator gen = ood::make_generator(seed_);
    const double bound = 1.0 / std::sqrt(static_cast<double>(d));
    weight_ = at::empty({1, d}, at::kFloat).uniform_(-bound, bound, gen).to(device).requires_grad_(true);
    bias_ = at::empty({1}, at::kFloat).uniform_(-bound, bound, gen).to(device).requires_grad_(true);
  }

  double alpha_, eps_;
  std::uint64_t seed_;
  at::Tensor weight_, bias_;
};

class ConfidenceDetector final : public ood::Detector {
 public:
  ConfidenceDetector(at::Tensor weight, at::Tensor bias, std::string pointer)
      : weight_(std::move(weight)), bias_(std::move(bias)), pointer_(std::move(pointer)) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    return n;
  }

  void attach(ood::Model& model) override {
    if (model.info().feature_dim != weight_.size(1))
      throw ood::InvalidArgument(pointer_ + ": the checkpoint's confidence branch takes " +
                                 std::to_string(weight_.size(1)) + " features, the model has " +
                                 std::to_string(model.info().feature_dim));
  }

  at::Tensor score(ood::Views& views) override {
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    if (features.size(1) != weight_.size(1))
      throw ood::ShapeError(std::string(kName) + ": features " + ood::describe_tensor(features) +
                            " do not match the confidence branch [1, " + std::to_string(weight_.size(1)) + "]");
    const at::Tensor w = weight_.to(features.device(), features.scalar_type());
    const at::Tensor b = bias_.to(features.device(), features.scalar_type());
    return -at::sigmoid(at::addmm(b, features, w.t())).squeeze(1);
  }

 private:
  at::Tensor weight_, bias_;
  std::string pointer_;
};

void register_components(ood::Registrar& registrar) {
  const std::string paper =
      "DeVries & Taylor, Learning Confidence for Out-of-Distribution Detection in Neural Networks, arXiv:1802.04865";
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Loss;
    info.name = kName;
    info.summary = "NLL of confidence-interpolated predictions plus -log confidence, with a learned confidence branch";
    info.paper = paper;
    info.year = 2018;
    info.doc =
        "c_i = sigmoid(w . F_i + b): a learned branch (linear layer from the penultimate features\n"
        "F to one value, nn.Linear initialisation from the pipeline seed) that the loss owns;\n"
        "its parameters are trained with the model and saved as branch.weight [1, D] and\n"
        "branch.bias [1] (checkpoint entries loss.branch.weight / loss.branch.bias).\n"
        "p'_i = c_i softmax(z_i) + (1 - c_i) onehot(y_i);\n"
        "loss = (1/N) sum_{i IN} -log(clamp(p'_i[y_i], eps, 1)) + alpha (1/N) sum_i -log(clamp(c_i, eps, 1)).\n"
        "Deviations from pytorch_ood.loss.ConfidenceLoss (POLICY.md, the paper): both terms are\n"
        "means over the batch (pytorch-ood SUMS the NLL term over the IN rows); a batch without IN\n"
        "samples gives the confidence term (pytorch-ood returns a constant 0 of shape [1]).\n"
        "pytorch-ood takes the confidence as an input; here the branch is part of the loss.\n"
        "As pytorch-ood, OOD samples (y < 0) enter the confidence term only. The detector\n"
        "`confidence` scores -c with the trained branch.";
    info.params = {ood::ParamSpec::real("alpha", "weight of the confidence term").default_value(1.0).min(0.0),
                   ood::ParamSpec::real("eps", "clipping value for the logarithms").default_value(1e-24).min(0.0, true)};
    registrar.add_loss(info, [](const ood::Params& p, ood::Context& ctx) {
      return std::make_shared<Confidence>(p.get_float("alpha"), p.get_float("eps"),
                                          ood::component_seed(p, ctx, "confidence"));
    });
  }
  {
    ood::ComponentInfo info;
    info.kind = ood::Kind::Detector;
    info.name = kName;
    info.summary = "negative learned confidence, -sigmoid(w . features + b), from a confidence-loss checkpoint";
    info.paper = paper;
    info.year = 2018;
    info.doc =
        "score = -c = -sigmoid(w . F + b), larger for outliers, with the confidence branch\n"
        "(loss.branch.weight [1, D], loss.branch.bias [1]) of the training state file given as\n"
        "`checkpoint` (written by training with the `confidence` loss). F = penultimate features.\n"
        "The paper's input preprocessing (ODIN-style) is not applied.";
    info.params = {ood::ParamSpec::path("checkpoint", "training state file holding loss.branch.weight / loss.branch.bias")};
    registrar.add_detector(info, [](const ood::Params& p, ood::Context&) {
      const auto file = p.get_path("checkpoint");
      const ood::TensorDict state = ood::io::load_state_dict(file);
      if (!state.contains("loss.branch.weight") || !state.contains("loss.branch.bias"))
        throw ood::StateError(p.pointer("checkpoint") + ": " + file.string() +
                              " holds no confidence branch (loss.branch.weight, loss.branch.bias): not a state "
                              "trained with the `confidence` loss");
      const at::Tensor w = state.at("loss.branch.weight"), b = state.at("loss.branch.bias");
      if (!at::isFloatingType(w.scalar_type()) || w.dim() != 2 || w.size(0) != 1 || !at::isFloatingType(b.scalar_type()) ||
          b.numel() != 1)
        throw ood::StateError(p.pointer("checkpoint") + ": " + file.string() + ": loss.branch.weight " +
                              ood::describe_tensor(w) + " / loss.branch.bias " + ood::describe_tensor(b) +
                              " are not [1, D] / [1]");
      return std::make_shared<ConfidenceDetector>(w.to(at::kFloat), b.reshape({1}).to(at::kFloat), p.pointer("checkpoint"));
    });
  }
}

}  // namespace

OOD_PLUGIN("confidence", "Learned-confidence loss and detector", register_components)
