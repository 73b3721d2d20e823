// Monte-Carlo dropout: repeated forward passes with dropout on; the score is the
// negative maximum of the mean softmax ("mean") or the mean over classes of the
// per-class variance of the softmax over the passes ("var").
//
// Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
// Uncertainty in Deep Learning", ICML 2016; the "var" score as in Kendall, Badrinarayanan
// & Cipolla, "Bayesian SegNet", BMVC 2017; pytorch-ood's MCD.
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ood/checks.hpp"
#include "ood/context.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/log.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"
#include "ood/views.hpp"

namespace {

constexpr const char* kName = "mcd";

/// Puts the model into the stochastic mode and seeds the default generator of its device;
/// restores the previous mode, generator state and (batch_norm false) the model's buffers
/// when it goes out of scope, also when a pass throws.
class StochasticScope {
 public:
  StochasticScope(ood::Model& model, bool bn_eval, std::uint64_t seed)
      : model_(model), previous_mode_(model.mode()), generator_(at::globalContext().defaultGenerator(model.device())) {
    {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      generator_state_ = generator_.get_state();
      generator_.set_current_seed(seed);
    }
    if (!bn_eval) {
      // Train mode updates the batch-norm running statistics: keep a copy to put back.
      snapshot_.emplace();
      for (const auto& [name, t] : model.state_dict()) snapshot_->set(name, t.detach().clone());
    }
    model.set_mode(bn_eval ? ood::ModelMode::McDropout : ood::ModelMode::Train);
  }
  ~StochasticScope() {
    try {
      if (snapshot_) {
        at::NoGradGuard no_grad;
        model_.load_state_dict(*snapshot_);
      }
    } catch (const std::exception& e) {
      ood::log::error(std::string(kName) + ": could not restore the model's buffers: " + e.what());
    }
    try {
      model_.set_mode(previous_mode_);
    } catch (const std::exception& e) {
      ood::log::error(std::string(kName) + ": could not restore the model's mode: " + e.what());
    }
    try {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      generator_.set_state(generator_state_);
    } catch (const std::exception& e) {
      ood::log::error(std::string(kName) + ": could not restore the random generator: " + e.what());
    }
  }
  StochasticScope(const StochasticScope&) = delete;
  StochasticScope& operator=(const StochasticScope&) = delete;

 private:
  ood::Model& model_;
  ood::ModelMode previous_mode_;
  at::Generator generator_;
  at::Tensor generator_state_;
  std::optional<ood::TensorDict> snapshot_;
};

class Mcd final : public ood::Detector {
 public:
  Mcd(std::int64_t samples, bool var_mode, bool batch_norm, std::uint64_t seed)
      : samples_(samples), var_mode_(var_mode), batch_norm_(batch_norm), seed_(seed) {}

  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.stochastic_passes = true;
    return n;
  }

  at::Tensor score(ood::Views& views) override {
    ood::Model& model = views.model();
    const at::Tensor& x = views.inputs();
    // Batch b of this detector draws its dropout masks from the default generator seeded
    // with (pipeline seed + b): reproducible, and the first batch of a run with seed s
    // draws what torch.manual_seed(s) before pytorch-ood's predict draws.
    const std::uint64_t seed = seed_ + batch_counter_++;
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> probs;
    probs.reserve(static_cast<std::size_t>(samples_));
    {
      StochasticScope scope(model, batch_norm_, seed);
      for (std::int64_t i = 0; i < samples_; ++i) {
        const at::Tensor logits = model.logits(x);
        ood::require_floating(logits, kName, "logits", logits.dim() >= 2 ? logits.dim() : 2, "[N, C, ...]");
        probs.push_back(at::softmax(logits, 1));
      }
    }
    const at::Tensor y = at::stack(probs);  // samples x N x C (x ...)
    if (var_mode_) return y.var(0, /*unbiased=*/true).mean(1);
    return -std::get<0>(y.mean(0).max(1));
  }

 private:
  std::int64_t samples_;
  bool var_mode_;
  bool batch_norm_;
  std::uint64_t seed_;
  std::uint64_t batch_counter_ = 0;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = kName;
  info.summary = "Monte-Carlo dropout: mean softmax or its variance over stochastic forward passes";
  info.paper =
      "Gal & Ghahramani, Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep "
      "Learning, ICML";
  info.year = 2016;
  info.doc =
      "`samples` forward passes with dropout on; p_s = softmax(logits_s). mode \"mean\": score = "
      "-max_c mean_s p_s,c; mode \"var\": score = mean_c of the unbiased variance over the passes of "
      "p_s,c (Kendall et al., Bayesian SegNet, 2017). Larger for outliers. As pytorch_ood.detector.MCD "
      "(statistical parity).\n"
      "batch_norm true (default): batch norm stays in eval mode (ModelMode::McDropout); false: the whole "
      "model is in train mode (batch norm uses the batch's statistics, so scores depend on the batch), "
      "and the running statistics it updates are restored afterwards. The model's previous mode is "
      "restored after the passes, also on errors.\n"
      "Random numbers: the passes of the detector's b-th scored batch (b = 0, 1, ...) draw from the "
      "default generator of the model's device seeded with (pipeline seed + b); its previous state is "
      "restored afterwards, so runs are reproducible and nothing else's random stream is disturbed. With "
      "pipeline seed s, the first batch gives exactly what torch.manual_seed(s) followed by pytorch-ood's "
      "predict gives. Does not fit; needs the model (its own forward passes, not the shared one); memory "
      "samples x N x C per batch.";
  info.params = {
      ood::ParamSpec::integer("samples", "number of stochastic forward passes (>= 2 for mode \"var\")")
          .default_value(30)
          .min(1),
      ood::ParamSpec::choice("mode", {"var", "mean"}, "score: variance of the softmax or negative max mean softmax")
          .default_value("var"),
      ood::ParamSpec::boolean("batch_norm", "keep batch norm in eval mode during the passes (pytorch-ood's "
                                            "batch_norm)")
          .default_value(true),
  };
  info.check = [](const ood::Params& params) {
    if (params.get_string("mode") == "var" && params.get_int("samples") < 2)
      throw ood::InvalidArgument(params.pointer("samples") +
                                 ": mode \"var\" needs at least 2 samples (the unbiased variance of one pass is "
                                 "undefined)");
  };
  registrar.add_detector(info, [](const ood::Params& params, ood::Context& ctx) -> std::shared_ptr<ood::Detector> {
    if (params.get_string("mode") == "var" && params.get_int("samples") < 2)
      throw ood::InvalidArgument(params.pointer("samples") + ": mode \"var\" needs at least 2 samples");
    return std::make_shared<Mcd>(params.get_int("samples"), params.get_string("mode") == "var",
                                 params.get_bool("batch_norm"), ctx.seed());
  });
}

}  // namespace

OOD_PLUGIN("mcd", "Monte-Carlo dropout OOD detector", register_components)
