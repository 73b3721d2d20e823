// Semi-supervised Deep SVDD (Deep SAD): the fixture holds pytorch-ood's squared-squared
// terms; a float64 reference reproduces them (validating itself) and, with the definition
// (IN: d = ||z - c||^2, OOD: 1 / d), is what the plugin must equal; the artefact is not
// reproduced.
#include "test_support.hpp"

#include "loss_runs.hpp"
#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/deep_svdd.pt");
  return d;
}

LossRun reference(const at::Tensor& x_in, const at::Tensor& c, const at::Tensor& y, const std::string& reduction,
                  bool artefact) {
  at::Tensor x = x_in.detach().to(at::kDouble).clone().requires_grad_(true);
  const at::Tensor d = (x - c.to(at::kDouble).view({1, -1})).pow(2).sum(1);
  const at::Tensor t = artefact ? d.pow(2) : d;
  const at::Tensor per = at::where(y >= 0, t, 1.0 / t);
  const at::Tensor value = reduction == "none" ? per : reduction == "sum" ? per.sum() : per.mean();
  (value.dim() == 0 ? value : value.sum()).backward();
  return {value.detach(), x.grad(), at::Tensor()};
}

TEST(SsDeepSvdd, ReferenceReproducesPytorchOod) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  const at::Tensor c = tensor_of(fx(), "ssvdd_random_center");
  for (const std::string red : {"mean", "sum", "none"}) {
    const LossRun r = reference(x, c, y, red, true);
    EXPECT_TRUE(all_close(r.value, tensor_of(fx(), "ssvdd_" + red + "_value_f64"), 1e-10, 1e-12)) << red;
    EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), "ssvdd_" + red + "_grad_x_f64"), 1e-10, 1e-12)) << red;
  }
}

TEST(SsDeepSvdd, FollowsDeepSadNotThePytorchOodArtefact) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>() && (y >= 0).any().item<bool>());
  const at::Tensor c = tensor_of(fx(), "ssvdd_random_center");
  for (const std::string red : {"mean", "sum", "none"}) {
    auto loss = make_loss("ss-deep-svdd", R"({"n_features": 4, "reduction": ")" + red + R"(", "center": )" +
                                              json_list(c) + "}");
    const LossRun def = reference(x, c, y, red, false);
    const LossRun r32 = run_loss(*loss, x, y);
    EXPECT_TRUE(all_close(r32.value, def.value, 1e-5, 1e-6)) << red;
    EXPECT_TRUE(all_close(r32.grad, def.grad, 1e-5, 1e-6)) << red;
    const LossRun r64 = run_loss(*loss, x.to(at::kDouble), y);
    EXPECT_TRUE(all_close(r64.value, def.value, 1e-10, 1e-12)) << red;
    EXPECT_TRUE(all_close(r64.grad, def.grad, 1e-10, 1e-12)) << red;
    EXPECT_GT((r64.value - tensor_of(fx(), "ssvdd_" + red + "_value_f64")).abs().max().item<double>(), 1e-3) << red;
    EXPECT_GT((r64.grad - tensor_of(fx(), "ssvdd_" + red + "_grad_x_f64")).abs().max().item<double>(), 1e-3) << red;
  }
}

TEST(SsDeepSvdd, HandComputedCase) {
  // c = 0: IN z = (1, 1) -> 2; OOD z = (2, 0) -> 1 / 4; mean over 2 samples
  auto loss = make_loss("ss-deep-svdd", R"({"center": [0, 0]})");
  const LossRun r =
      run_loss(*loss, at::tensor({1.0, 1.0, 2.0, 0.0}, at::kDouble).view({2, 2}), at::tensor({0, -1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), (2.0 + 0.25) / 2, 1e-12);
  // IN: 2 z / 2 = (1, 1); OOD: -2 z / d^2 / 2 = (-1/8, 0)
  EXPECT_TRUE(all_close(r.grad, at::tensor({1.0, 1.0, -0.125, 0.0}, at::kDouble).view({2, 2}), 1e-12, 1e-12));
}

TEST(SsDeepSvdd, FirstBatchCentreDetectorAndState) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  auto loss = make_loss("ss-deep-svdd");
  IdentityModel model(4, 4);
  loss->attach(model);
  run_loss(*loss, x, y);
  const at::Tensor mean = x.index({y >= 0}).mean(0, true);
  EXPECT_TRUE(all_close(loss->state().at("_center._params"), mean, 0, 0));

  const auto dir = temp_dir("ss_deep_svdd_checkpoint");
  TensorDict file;
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto det = make_detector("ss-deep-svdd", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  det->attach(model);
  EXPECT_TRUE(all_close(score_logits(*det, x), (x - mean).pow(2).sum(1), 1e-5, 1e-6));
  EXPECT_THROW(make_detector("ss-deep-svdd", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);

  auto restored = make_loss("ss-deep-svdd");
  restored->load_state(loss->state());
  EXPECT_TRUE(all_close(run_loss(*restored, x, y).value, run_loss(*loss, x, y).value, 0, 0));
  TensorDict bad;
  bad.set("c", mean);
  EXPECT_THROW(restored->load_state(bad), StateError);
  EXPECT_THROW(run_loss(*loss, x, at::zeros({12})), ShapeError);
  EXPECT_THROW(run_loss(*loss, x, at::zeros({5}, at::kLong)), ShapeError);
  EXPECT_THROW(make_loss("ss-deep-svdd", R"({"n_features": 3})")->attach(model), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
