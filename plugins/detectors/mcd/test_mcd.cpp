// mcd: Monte-Carlo dropout against pytorch-ood's MCD (tests/fixtures/reference): the
// same dropout masks with the same seed, and statistically against the expectation
// fields; modes and random state restored; reproducible from the pipeline seed.
#include "test_support.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "ood/core/build_context.hpp"
#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fixture_mcd() {
  static const auto d = load_tensor_dict_file("reference/detectors/mcd.pt");
  return d;
}

at::Tensor data(const std::string& key) { return tensor_of(reference_data(), key); }
at::Tensor fx(const std::string& key) { return tensor_of(fixture_mcd(), key); }

/// An mcd detector built by a pipeline with seed `seed` (all parameters given).
std::shared_ptr<Detector> mcd_with_seed(std::uint64_t seed, const std::string& mode, std::int64_t samples = 30,
                                        bool batch_norm = true) {
  core::BuildContext ctx(registry(), seed);
  const std::string json = R"({"samples": )" + std::to_string(samples) + R"(, "mode": ")" + mode +
                           R"(", "batch_norm": )" + (batch_norm ? "true" : "false") + "}";
  return ctx.make_detector(ComponentSpec{"mcd", Params::from_json_text(json, "/test/params"), "/test"});
}

std::shared_ptr<Model> model_without_dropout() {
  static const std::shared_ptr<Model> m =
      make_model("wide-resnet", R"({"num_classes": 10, "depth": 10, "widen_factor": 1, "drop_rate": 0.0})");
  return m;
}

TEST(Mcd, SameSeedGivesPytorchOodsDropoutMasks) {
  // pytorch-ood: torch.manual_seed(77) right before predict; here: pipeline seed 77, first batch.
  // (Two of the four fixture runs, to keep the test short: 30 passes each.)
  auto model = reference_model();
  for (const auto& [mode, side] : {std::pair<std::string, std::string>{"var", "in"}, {"mean", "out"}}) {
    auto det = mcd_with_seed(77, mode);
    const at::Tensor s = score_on_model(*det, *model, data("x_" + side), 64);
    EXPECT_TRUE(all_close(s, fx("scores_" + mode + "_" + side), 1e-5, 1e-6)) << mode << " " << side;
    EXPECT_EQ(model->mode(), ModelMode::Eval);
  }
}

TEST(Mcd, StatisticallyEqualToTheExpectationFields) {
  // Another seed (the test pipeline's 0): other masks, the same expectation. 30 passes
  // per batch (the 'in' batch in mode var, then in mode mean, to keep the test short).
  auto model = reference_model();
  for (const std::string side : {"in"}) {
    const at::Tensor long_var = fx("long_mean_var_" + side).to(at::kDouble);
    const at::Tensor var = score_on_model(*make_detector("mcd", R"({"mode": "var"})"), *model, data("x_" + side), 64)
                               .to(at::kDouble);
    // The unbiased variance of 30 passes scatters around its expectation with a relative
    // standard error of about sqrt(2 / 29) = 0.26 per sample; averaged over 64 samples
    // the ratio is within a few percent of 1.
    const double ratio = (var / long_var).mean().item<double>();
    EXPECT_NEAR(ratio, 1.0, 0.15) << side;
    EXPECT_TRUE(((var - long_var).abs() <= 2.0 * long_var + 1e-6).all().item<bool>()) << side;
    // Mean mode: each mean softmax deviates from its expectation by its Monte-Carlo
    // standard error, at most sqrt(C * var / 30) (+ that of the 400-pass estimate).
    const at::Tensor mean = score_on_model(*make_detector("mcd", R"({"mode": "mean", "samples": 30})"), *model,
                                           data("x_" + side), 64)
                                .to(at::kDouble);
    const at::Tensor se = at::sqrt(10 * long_var / 30) + at::sqrt(10 * long_var / 400);
    const at::Tensor dev = (-mean - fx("long_mean_max_prob_" + side).to(at::kDouble)).abs();
    EXPECT_TRUE((dev <= 4 * se + 1e-5).all().item<bool>()) << side << " max dev " << dev.max().item<double>();
    EXPECT_GT(var.min().item<double>(), 0.0);
  }
}

TEST(Mcd, ModelWithoutDropoutHasZeroVariance) {
  auto model = model_without_dropout();
  model->set_mode(ModelMode::Eval);
  at::manual_seed(1);
  const at::Tensor x = at::randn({6, 3, 32, 32});
  const at::Tensor var = score_on_model(*make_detector("mcd", R"({"samples": 4})"), *model, x, 6);
  EXPECT_TRUE(at::equal(var, at::zeros_like(var))) << var;
  // Mean mode is then the plain maximum softmax probability.
  const at::Tensor mean = score_on_model(*make_detector("mcd", R"({"samples": 3, "mode": "mean"})"), *model, x, 6);
  at::Tensor msp;
  {
    at::NoGradGuard g;
    msp = -std::get<0>(at::softmax(model->logits(x), 1).max(1));
  }
  EXPECT_TRUE(all_close(mean, msp, 1e-6, 1e-7));
}

TEST(Mcd, ReproducibleFromThePipelineSeedPerBatch) {
  auto model = reference_model();
  const at::Tensor x = data("x_in").slice(0, 0, 8);
  auto a = mcd_with_seed(5, "var", 4);
  auto b = mcd_with_seed(5, "var", 4);
  const at::Tensor a0 = score_on_model(*a, *model, x, 8), b0 = score_on_model(*b, *model, x, 8);
  EXPECT_TRUE(at::equal(a0, b0));
  // The next batch uses seed + 1: other masks (and the same as a detector with seed 6).
  const at::Tensor a1 = score_on_model(*a, *model, x, 8);
  EXPECT_FALSE(at::equal(a0, a1));
  EXPECT_TRUE(at::equal(a1, score_on_model(*mcd_with_seed(6, "var", 4), *model, x, 8)));
  EXPECT_FALSE(at::equal(a0, score_on_model(*mcd_with_seed(9, "var", 4), *model, x, 8)));
}

TEST(Mcd, RestoresModeAndRandomStateEvenOnErrors) {
  auto model = reference_model();
  auto det = make_detector("mcd", R"({"samples": 2})");
  EXPECT_TRUE(det->needs().stochastic_passes);
  EXPECT_FALSE(det->needs().fit);
  at::NoGradGuard no_grad;
  for (const ModelMode before : {ModelMode::Eval, ModelMode::Train}) {
    model->set_mode(before);
    at::manual_seed(123);
    {
      Views v(*model, data("x_in").slice(0, 0, 4));
      det->score(v);
    }
    EXPECT_EQ(model->mode(), before);
    const at::Tensor after = at::rand({5});
    at::manual_seed(123);
    EXPECT_TRUE(at::equal(after, at::rand({5})));  // the global stream is untouched
    // A pass that throws (wrong input channels): mode and random state still restored.
    at::manual_seed(321);
    {
      Views bad(*model, at::randn({2, 5, 32, 32}));
      at::manual_seed(321);
      EXPECT_ANY_THROW(det->score(bad));
    }
    EXPECT_EQ(model->mode(), before);
    const at::Tensor after_bad = at::rand({5});
    at::manual_seed(321);
    EXPECT_TRUE(at::equal(after_bad, at::rand({5})));
  }
  model->set_mode(ModelMode::Eval);
}

TEST(Mcd, BatchNormInTrainModeLeavesTheModelUnchanged) {
  auto model = model_without_dropout();
  model->set_mode(ModelMode::Eval);
  TensorDict before;
  for (const auto& [k, v] : model->state_dict()) before.set(k, v.clone());
  at::manual_seed(2);
  const at::Tensor x = at::randn({5, 3, 32, 32});
  const at::Tensor s = score_on_model(*mcd_with_seed(1, "mean", 2, false), *model, x, 5);
  // Batch statistics instead of running ones: another value than in eval mode...
  const at::Tensor eval_mode = score_on_model(*mcd_with_seed(1, "mean", 2, true), *model, x, 5);
  EXPECT_FALSE(all_close(s, eval_mode, 1e-6, 1e-6));
  // ... and the running statistics are put back.
  for (const auto& [k, v] : model->state_dict()) EXPECT_TRUE(at::equal(v, before.at(k))) << k;
  EXPECT_EQ(model->mode(), ModelMode::Eval);
}

TEST(Mcd, RefusesBadParametersAndNeedsAModel) {
  EXPECT_THROW(make_detector("mcd", R"({"samples": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("mcd", R"({"samples": 1})"), InvalidArgument);  // var needs 2
  EXPECT_NO_THROW(make_detector("mcd", R"({"samples": 1, "mode": "mean"})"));
  EXPECT_THROW(make_detector("mcd", R"({"mode": "max"})"), InvalidArgument);
  EXPECT_THROW(make_detector("mcd", R"({"batch_norm": 1})"), InvalidArgument);
  EXPECT_THROW(make_detector("mcd", R"({"sample": 3})"), InvalidArgument);
  auto det = make_detector("mcd");
  EXPECT_THROW(score_logits(*det, data("logits_in")), StateError);  // no model in the views
}

}  // namespace
}  // namespace ood::test
