// II loss and detector: parity with pytorch-ood's IILoss over a train, train, eval
// sequence (values, gradients, running centres, float32 and float64), and the policy
// that the running centres carry no autograd history (backward after evaluation works).
#include "test_support.hpp"

#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

struct Result {
  at::Tensor value, grad;
};

/// One call through a model-backed Views (the model's mode selects training/evaluation).
Result call(Loss& loss, Model& model, const at::Tensor& z_in, const at::Tensor& y) {
  at::Tensor z = z_in.detach().clone().requires_grad_(true);
  Views v(model, z, /*track_gradients=*/true);
  at::Tensor value = loss.forward(v, y);
  value.backward();
  return {value.detach(), z.grad()};
}

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/ii.pt");
  return d;
}

TEST(Ii, MatchesPytorchOodOverTrainTrainEval) {
  for (const bool f64 : {false, true}) {
    const std::string sfx = f64 ? "_f64" : "";
    const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
    auto loss = make_loss("ii", R"({"n_classes": 5, "n_embedding": 3, "alpha": 1.0})");
    IdentityModel model(5, 3);
    for (int i = 0; i < 3; ++i) {
      const std::string k = "call" + std::to_string(i);
      model.set_mode(i < 2 ? ModelMode::Train : ModelMode::Eval);
      at::Tensor z = tensor_of(fx(), "inputs_z" + std::to_string(i));
      if (f64) z = z.to(at::kDouble);
      const Result r = call(*loss, model, z, tensor_of(fx(), "inputs_y" + std::to_string(i)));
      EXPECT_TRUE(all_close(r.value, tensor_of(fx(), k + "_value" + sfx), rtol, atol)) << k << sfx;
      const auto state = loss->state();
      EXPECT_TRUE(all_close(state.at("running_centers.running_centers"), tensor_of(fx(), k + "_running_centers" + sfx),
                            rtol, atol))
          << k << sfx;
      EXPECT_TRUE(all_close(state.at("running_centers.num_batches_tracked"),
                            tensor_of(fx(), k + "_num_batches_tracked"), 0, 0))
          << k << sfx;
      if (i < 2) {
        EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), k + "_grad_z" + sfx), rtol, atol)) << k << sfx;
      } else {
        // POLICY: backward of the eval call works (pytorch-ood raises); only the intra term
        // depends on z: d/dz_i = 2 (z_i - c_{y_i}) / B_in for IN rows, 0 for OOD rows
        const at::Tensor y = tensor_of(fx(), "inputs_y2");
        const at::Tensor c = state.at("running_centers.running_centers");
        const at::Tensor known = (y >= 0).unsqueeze(1);
        const double n_in = static_cast<double>((y >= 0).sum().item<std::int64_t>());
        const at::Tensor expected =
            at::where(known, 2.0 * (z - c.index({y.clamp_min(0)})) / n_in, at::zeros_like(z));
        ASSERT_TRUE(r.grad.defined()) << sfx;
        EXPECT_TRUE(all_close(r.grad, expected, rtol, atol)) << sfx;
      }
    }
  }
}

TEST(Ii, HandComputedCase) {
  // D = 1, classes 0 and 1: z = (0 | 1, 3): mu = (0, 2), intra = (1 + 1) / 3, inter = 4
  auto loss = make_loss("ii", R"({"n_classes": 2, "n_embedding": 1, "alpha": 1.0})");
  IdentityModel model(2, 1);
  const Result r = call(*loss, model, at::tensor({0.0, 1.0, 3.0}, at::kDouble).view({3, 1}),
                        at::tensor({0, 1, 1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 2.0 / 3.0 - 4.0, 1e-12);
  EXPECT_TRUE(all_close(r.grad, at::tensor({4.0, -8.0 / 3.0, -4.0 / 3.0}, at::kDouble).view({3, 1}), 1e-12, 1e-12));
  // running centres after one batch: the batch means
  EXPECT_TRUE(all_close(loss->state().at("running_centers.running_centers"),
                        at::tensor({0.0, 2.0}, at::kDouble).view({2, 1}), 1e-12, 1e-12));
  EXPECT_FALSE(loss->state().at("running_centers.running_centers").requires_grad());
}

TEST(Ii, StateRoundTripAndDetector) {
  auto loss = make_loss("ii", R"({"n_classes": 5, "n_embedding": 3})");
  IdentityModel model(5, 3);
  for (int i = 0; i < 2; ++i)
    call(*loss, model, tensor_of(fx(), "inputs_z" + std::to_string(i)), tensor_of(fx(), "inputs_y" + std::to_string(i)));
  auto restored = make_loss("ii", R"({"embedding": "features"})");  // the stub's features are its inputs
  restored->load_state(loss->state());
  restored->attach(model);
  model.set_mode(ModelMode::Eval);
  const at::Tensor z2 = tensor_of(fx(), "inputs_z2"), y2 = tensor_of(fx(), "inputs_y2");
  EXPECT_TRUE(all_close(call(*restored, model, z2, y2).value, tensor_of(fx(), "call2_value"), 1e-5, 1e-6));

  const auto dir = temp_dir("ii_checkpoint");
  TensorDict file;
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto det = make_detector("ii", R"({"embedding": "features", "checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  det->attach(model);
  const at::Tensor c = tensor_of(fx(), "call1_running_centers");
  const at::Tensor expected = std::get<0>((z2.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(2).min(1));
  EXPECT_TRUE(all_close(score_views(*det, z2, at::Tensor()), expected, 1e-5, 1e-6));

  TensorDict bad;
  bad.set("running_centers.running_centers", at::zeros({5, 3}));
  EXPECT_THROW(restored->load_state(bad), StateError);
  io::save_tensor_dict(dir / "bad.pt", bad);
  EXPECT_THROW(make_detector("ii", R"({"checkpoint": ")" + (dir / "bad.pt").string() + "\"}"), StateError);
  EXPECT_THROW(make_detector("ii", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  IdentityModel other(4, 3);
  auto det2 = make_detector("ii", R"({"embedding": "features", "checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  EXPECT_THROW(det2->attach(other), InvalidArgument);
}

TEST(Ii, TakesSizesFromTheModelAndChecksThem) {
  IdentityModel model(3, 8);
  auto loss = make_loss("ii", R"({"embedding": "features"})");
  loss->attach(model);
  EXPECT_EQ(loss->state().at("running_centers.running_centers").sizes(), at::IntArrayRef({3, 8}));
  EXPECT_THROW(make_loss("ii", R"({"n_classes": 4})")->attach(model), InvalidArgument);
  EXPECT_THROW(make_loss("ii", R"({"n_embedding": 8})")->attach(model), InvalidArgument);  // logits have 3
  EXPECT_EQ(loss->parameters().size(), 0u);
}

TEST(Ii, AllOodAndBadTargets) {
  auto loss = make_loss("ii", R"({"n_classes": 5, "n_embedding": 3})");
  IdentityModel model(5, 3);
  const Result r = call(*loss, model, at::randn({4, 3}), at::full({4}, -1, at::kLong));
  EXPECT_EQ(r.value.item<float>(), 0.0f);
  EXPECT_EQ(loss->state().at("running_centers.num_batches_tracked").item<float>(), 0.0f);
  EXPECT_THROW(call(*loss, model, at::randn({4, 3}), at::zeros({4})), ShapeError);
  EXPECT_THROW(call(*loss, model, at::randn({4, 3}), at::zeros({3}, at::kLong)), ShapeError);
  EXPECT_THROW(call(*loss, model, at::randn({4, 3}), at::full({4}, 5, at::kLong)), ShapeError);
}

}  // namespace
}  // namespace ood::test
