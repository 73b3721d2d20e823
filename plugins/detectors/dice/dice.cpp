// DICE: directed sparsification of the last layer (Sun & Li, "DICE: Leveraging
// Sparsification for Out-of-Distribution Detection", ECCV 2022), as pytorch-ood's DICE.
//
//   m          = mean of the IN fitting features                    [D]
//   contrib    = m[None, :] * W                                      [C, D]
//   threshold  = numpy.percentile(contrib, p)                        (p in percent)
//   W'         = where(contrib > threshold, W, 0)
//   score(x)   = -logsumexp(z W'^T + b)                              (energy, t = 1)
//
// Fitting streams a float64 sum and a count of the IN features.
#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/stats.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "dice";

class Dice final : public ood::Detector {
 public:
  explicit Dice(double p) : p_(p) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = true;
    n.linear_head = true;
    n.fit = true;
    return n;
  }

  void attach(ood::Model& model) override {
    const std::optional<ood::LinearHead> head = model.linear_head();
    if (!head) throw ood::InvalidArgument("dice needs the model's linear last layer (weight and bias), which it lacks");
    check_head(*head);
    head_dims_ = head->weight.sizes().vec();
    model_ = &model;
  }

  void fit_batch(ood::Views& views, const at::Tensor& labels) override {
    const ood::LinearHead head = current_head(views);
    weight_ = head.weight;
    bias_ = head.bias;
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "fitting features", 2, "[N, D]");
    if (labels.dim() != 1 || labels.size(0) != features.size(0))
      throw ood::ShapeError(std::string(kName) + ": fitting labels must be [" + std::to_string(features.size(0)) +
                            "], got " + ood::describe_tensor(labels));
    if (sum_.defined() && sum_.size(0) != features.size(1))
      throw ood::ShapeError(std::string(kName) + ": fitting features of size " + std::to_string(features.size(1)) +
                            " after earlier batches of size " + std::to_string(sum_.size(0)));
    const at::Tensor z = features.detach().to(at::kCPU, at::kDouble).index({labels.to(at::kCPU) >= 0});
    if (!at::isfinite(z).all().item<bool>())
      throw ood::ShapeError(std::string(kName) + ": the fitting features contain NaN or infinite values");
    const at::Tensor s = z.sum(0);
    sum_ = sum_.defined() ? sum_ + s : s;
    count_ += z.size(0);
  }

  void finish_fit() override {
    if (count_ == 0)
      throw ood::StateError(std::string(kName) + ": the fitting data holds no in-distribution samples");
    if (!weight_.defined())
      throw ood::StateError(std::string(kName) +
                            ": fitting needs the model's linear head (the detector was not attached to a model)");
    if (weight_.size(1) != sum_.size(0))
      throw ood::ShapeError(std::string(kName) + ": fitting features have " + std::to_string(sum_.size(0)) +
                            " dimensions, the linear head expects " + std::to_string(weight_.size(1)));
    const at::Tensor mean = sum_ / static_cast<double>(count_);
    const at::Tensor w = weight_.to(at::kCPU);
    const at::Tensor contrib = mean.unsqueeze(0) * w.to(at::kDouble);
    const double threshold = ood::percentile(contrib, p_);
    mean_ = mean;
    threshold_ = at::scalar_tensor(threshold, at::kDouble);
    masked_ = at::where(contrib > threshold, w, at::zeros_like(w)).contiguous();
    fitted_bias_ = bias_.to(at::kCPU).clone();
    weight_ = bias_ = at::Tensor();
    sum_ = at::Tensor();
    count_ = 0;
  }

  bool is_fitted() const override { return masked_.defined(); }

  at::Tensor score(ood::Views& views) override {
    if (!masked_.defined())
      throw ood::StateError(std::string(kName) + ": not fitted: give it \"fit\" (fitting data) or \"load_state\"");
    const at::Tensor& features = views.features();
    ood::require_floating(features, kName, "features", 2, "[N, D]");
    if (features.size(1) != masked_.size(1))
      throw ood::ShapeError(std::string(kName) + ": features have " + std::to_string(features.size(1)) +
                            " dimensions, the fitted weights " + std::to_string(masked_.size(1)));
    const at::Tensor z = features.detach();
    const at::Tensor logits = at::linear(z, masked_.to(z.device(), z.scalar_type()),
                                         fitted_bias_.to(z.device(), z.scalar_type()));
    return -at::logsumexp(logits, 1);
  }

  ood::TensorDict state() const override {
    ood::TensorDict out;
    if (!masked_.defined()) return out;
    out.set("mean_activation", mean_);
    out.set("threshold", threshold_);
    out.set("masked_weight", masked_);
    out.set("bias", fitted_bias_);
    return out;
  }

  void load_state(const ood::TensorDict& saved) override {
    const std::vector<std::string> expected = {"mean_activation", "threshold", "masked_weight", "bias"};
    for (const auto& key : saved.keys())
      if (std::find(expected.begin(), expected.end(), key) == expected.end())
        throw ood::StateError(std::string(kName) + ": unknown state entry '" + key +
                              "' (expected mean_activation, threshold, masked_weight, bias)");
    for (const auto& key : expected)
      if (!saved.contains(key)) throw ood::StateError(std::string(kName) + ": the state lacks '" + key + "'");
    const at::Tensor m = saved.at("mean_activation"), t = saved.at("threshold"), w = saved.at("masked_weight"),
                     b = saved.at("bias");
    auto floating = [](const at::Tensor& x) { return at::isFloatingType(x.scalar_type()); };
    if (w.dim() != 2 || !floating(w) || w.size(0) == 0 || w.size(1) == 0)
      throw ood::StateError(std::string(kName) + ": state 'masked_weight' must be floating [C, D], got " +
                            ood::describe_tensor(w));
    if (m.dim() != 1 || !floating(m) || m.size(0) != w.size(1))
      throw ood::StateError(std::string(kName) + ": state 'mean_activation' must be floating [" +
                            std::to_string(w.size(1)) + "], got " + ood::describe_tensor(m));
    if (b.dim() != 1 || !floating(b) || b.size(0) != w.size(0))
      throw ood::StateError(std::string(kName) + ": state 'bias' must be floating [" + std::to_string(w.size(0)) +
                            "], got " + ood::describe_tensor(b));
    if (t.dim() != 0 || !floating(t))
      throw ood::StateError(std::string(kName) + ": state 'threshold' must be a floating scalar, got " +
                            ood::describe_tensor(t));
    if (!head_dims_.empty() && !w.sizes().equals(head_dims_))
      throw ood::StateError(std::string(kName) + ": the state's weights are " + ood::describe_tensor(w) +
                            ", the model's linear head has weight [" + std::to_string(head_dims_[0]) + ", " +
                            std::to_string(head_dims_[1]) + "]");
    mean_ = m.to(at::kCPU, at::kDouble).clone();
    threshold_ = t.to(at::kCPU, at::kDouble).clone();
    masked_ = w.to(at::kCPU).contiguous().clone();
    fitted_bias_ = b.to(at::kCPU).clone();
  }

 private:
  static void check_head(const ood::LinearHead& head) {
    if (!head.weight.defined() || head.weight.dim() != 2 || !head.bias.defined() || head.bias.dim() != 1 ||
        head.bias.size(0) != head.weight.size(0))
      throw ood::InvalidArgument("dice needs a linear head with weight [C, D] and bias [C], got weight " +
                                 ood::describe_tensor(head.weight) + " and bias " + ood::describe_tensor(head.bias));
  }

  // The linear head: of the views' model, else of the attached model.
  ood::LinearHead current_head(ood::Views& views) const {
    ood::Model* model = views.has_model() ? &views.model() : model_;
    if (model == nullptr)
      throw ood::StateError(std::string(kName) +
                            ": fitting needs the model's linear head (the detector was not attached to a model)");
    const std::optional<ood::LinearHead> head = model->linear_head();
    if (!head) throw ood::StateError(std::string(kName) + ": the model has no linear last layer");
    check_head(*head);
    return ood::LinearHead{head->weight.detach(), head->bias.detach()};
  }

  double p_;
  ood::Model* model_ = nullptr;        // the attached model
  std::vector<std::int64_t> head_dims_;  // its head's weight shape [C, D]
  at::Tensor weight_, bias_;             // the head seen while fitting
  at::Tensor sum_;            // fitting: float64 [D]
  std::int64_t count_ = 0;
  at::Tensor mean_, threshold_, masked_, fitted_bias_;  // fitted state
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "energy of a last layer sparsified by the mean contribution of each weight";
  info.paper = "Sun & Li, DICE: Leveraging Sparsification for Out-of-Distribution Detection, ECCV";
  info.year = 2022;
  info.doc =
      "m = mean of the IN fitting features; contrib = m[None, :] * W (W: the model's linear last\n"
      "layer, C x D); W' = where(contrib > percentile(contrib, p), W, 0);\n"
      "score = -logsumexp(z W'^T + b), larger for outliers. p is a percentage in [0, 100]\n"
      "(numpy.percentile, linear): p = 90 (the default, the paper's CIFAR setting) keeps the 10 %\n"
      "largest contributions.\n"
      "Matches pytorch_ood.detector.DICE (parity); the mean, contributions and threshold are\n"
      "computed in float64. Fitting streams a float64 sum of the features (nothing is kept).\n"
      "The state holds mean_activation, threshold, masked_weight W' and the bias.";
  info.params = {
      ood::ParamSpec::real("p", "percentile (in percent, 0..100) of the weight contributions to drop")
          .default_value(90.0)
          .min(0.0)
          .max(100.0),
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) {
    return std::make_shared<Dice>(params.get_float("p"));
  });
}

}  // namespace

OOD_PLUGIN("dice", "DICE detector (sparsified last layer)", register_components)
