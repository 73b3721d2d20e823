// WeightedEBO: energy with per-class weights, as pytorch-ood's WeightedEBO.
//
//   score(x) = -log sum_c relu(w_c) exp(f_c(x))
//            = -logsumexp_{c : w_c > 0} (f_c(x) + log w_c)      (max-shifted, finite)
//
// Du, Wang, Cai & Li, "VOS: Learning What You Don't Know by Virtual Outlier Synthesis",
// ICLR 2022 (the weighted energy; w is learned with the VOS regularisation loss).
#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <string>

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/logit_detector.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"

namespace {

constexpr const char* kName = "weighted-ebo";

/// Reads `weight` (and the unused `bias`) of an nn.Linear(C, 1) state dict; returns the
/// class weights [C] float64. Throws with the parameter's pointer for anything else.
at::Tensor read_weights(const std::filesystem::path& file, const std::string& pointer) {
  ood::TensorDict dict;
  try {
    dict = ood::io::load_state_dict(file);
  } catch (const ood::Error& e) {
    throw ood::FileError(pointer + ": " + e.what());
  }
  const std::string where = pointer + ": " + file.string() + ": ";
  for (const auto& key : dict.keys())
    if (key != "weight" && key != "bias")
      throw ood::InvalidArgument(where + "unexpected entry '" + key +
                                 "' (expected the state dict of an nn.Linear(num_classes, 1): weight [1, C], bias [1])");
  if (!dict.contains("weight"))
    throw ood::InvalidArgument(where + "no 'weight' entry (expected weight [1, C] of an nn.Linear(num_classes, 1))");
  const at::Tensor w = dict.at("weight");
  if (!at::isFloatingType(w.scalar_type()) || !(w.dim() == 2 && w.size(0) == 1) || w.numel() < 1)
    throw ood::InvalidArgument(where + "'weight' must be a floating tensor [1, C], got " + ood::describe_tensor(w));
  at::Tensor out = w.reshape({-1}).to(at::kDouble).contiguous();
  if (!at::isfinite(out).all().item<bool>())
    throw ood::InvalidArgument(where + "'weight' has non-finite values");
  if (!(out > 0).any().item<bool>())
    throw ood::InvalidArgument(where + "every weight is <= 0: relu(w) = 0 and the score would be +inf for every input");
  return out;
}

class WeightedEbo final : public ood::LogitDetector {
 public:
  WeightedEbo(at::Tensor weights, std::string pointer)
      : ood::LogitDetector(kName, [weights](const at::Tensor& logits) { return score_fn(weights, logits); }),
        weights_(std::move(weights)),
        pointer_(std::move(pointer)) {}

  void attach(ood::Model& model) override {
    const std::int64_t classes = model.info().num_classes;
    if (classes > 0 && classes != weights_.size(0))
      throw ood::InvalidArgument(pointer_ + ": the weights have " + std::to_string(weights_.size(0)) +
                                 " classes, the model " + std::to_string(classes));
  }

  static at::Tensor score_fn(const at::Tensor& weights, const at::Tensor& logits) {
    const std::int64_t c = logits.size(1);
    if (c != weights.size(0))
      throw ood::ShapeError(std::string(kName) + ": logits have " + std::to_string(c) + " classes, the weights " +
                            std::to_string(weights.size(0)) + " (logits " + ood::describe_tensor(logits) + ")");
    std::vector<std::int64_t> shape(static_cast<std::size_t>(logits.dim()), 1);
    shape[1] = c;
    // log relu(w): -inf for w <= 0, so those classes drop out of the log-sum-exp.
    const at::Tensor log_w = at::log(at::relu(weights)).to(logits.device(), logits.scalar_type()).view(shape);
    return -at::logsumexp(logits + log_w, {1});
  }

 private:
  at::Tensor weights_;
  std::string pointer_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "weighted energy, -log sum_c relu(w_c) exp(logit_c)";
  info.paper = "Du, Wang, Cai & Li, VOS: Learning What You Don't Know by Virtual Outlier Synthesis, ICLR";
  info.year = 2022;
  info.doc =
      "score = -log sum_c relu(w_c) exp(logits_c), larger for outliers, with w the weight [1, C] of an "
      "nn.Linear(num_classes, 1) read from the file `weights` (its bias is not used), as "
      "pytorch_ood.detector.WeightedEBO.\n"
      "Computed as -logsumexp_c(logits_c + log relu(w_c)) with the maximum shifted out, so the score is "
      "finite for any finite logits (pytorch-ood exponentiates unshifted logits: exp overflows to inf "
      "(score -inf or NaN) for logits above ~88 in float32 and underflows to 0 (score +inf) for very "
      "negative ones); elsewhere equal to pytorch-ood.\n"
      "Segmentation logits [N, C, H, W] give pixel-wise scores [N, H, W]. Does not fit; keeps only the C "
      "weights. The file must hold `weight` [1, C] (and optionally `bias`), C = the model's classes, and "
      "at least one weight > 0.";
  info.params = {ood::ParamSpec::path(
      "weights", "PyTorch file (torch.save of an nn.Linear(C, 1) state dict) with `weight` [1, C]; `bias` unused")};
  registrar.add_detector(info, [](const ood::Params& params, ood::Context&) -> std::shared_ptr<ood::Detector> {
    const std::string pointer = params.pointer("weights");
    return std::make_shared<WeightedEbo>(read_weights(params.get_path("weights"), pointer), pointer);
  });
}

}  // namespace

OOD_PLUGIN("weighted-ebo", "Weighted energy-based OOD detector", register_components)
