// Center loss and detector: parity with pytorch-ood's CenterLoss (values, gradients with
// respect to the embedding and the learnable centres, float32 and float64).
#include "test_support.hpp"

#include "loss_runs.hpp"
#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/center.pt");
  return d;
}

TensorDict centers_state(const at::Tensor& c) {
  TensorDict s;
  s.set("_centers._params", c);
  return s;
}

const std::vector<std::pair<std::string, std::string>> kCases = {
    {"eye_learnable", R"({"n_classes": 5, "n_dim": 5, "magnitude": 2.0, "radius": 0.0, "fixed": false})"},
    {"eye_fixed", R"({"n_classes": 5, "n_dim": 5, "magnitude": 2.0, "radius": 0.5, "fixed": true})"},
    {"random", R"({"n_classes": 5, "n_dim": 3, "radius": 0.1})"},
};

TEST(Center, MatchesPytorchOodForEveryCase) {
  const at::Tensor y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>());
  for (const auto& [key, params] : kCases) {
    const at::Tensor z = tensor_of(fx(), "inputs_z_" + key);
    const at::Tensor init = tensor_of(fx(), "centers_init_" + key);
    const bool learnable = key != "eye_fixed";
    for (const bool f64 : {false, true}) {
      const std::string sfx = f64 ? "_f64" : "";
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      auto loss = make_loss("center", params);
      loss->load_state(centers_state(f64 ? init.to(at::kDouble) : init));
      ASSERT_EQ(loss->parameters().size(), learnable ? 1u : 0u) << key;
      const LossRun r = run_loss(*loss, f64 ? z.to(at::kDouble) : z, y);
      EXPECT_TRUE(all_close(r.value, tensor_of(fx(), key + "_value" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), key + "_grad_z" + sfx), rtol, atol)) << key << sfx;
      if (learnable) {
        EXPECT_TRUE(all_close(r.grad_param, tensor_of(fx(), key + "_grad_param__centers__params" + sfx), rtol, atol))
            << key << sfx;
      }
    }
  }
}

TEST(Center, InitialisesEyeCentresAsPytorchOod) {
  // n_dim == n_classes: eye; the magnitude scales fixed centres only (pytorch-ood)
  for (const auto& [key, params] : kCases) {
    if (key == "random") continue;
    auto loss = make_loss("center", params);
    EXPECT_TRUE(all_close(loss->state().at("_centers._params"), tensor_of(fx(), "centers_init_" + key), 0, 0)) << key;
  }
  // otherwise standard normal from the pipeline seed: reproducible, learnable
  auto a = make_loss("center", R"({"n_classes": 5, "n_dim": 3})");
  auto b = make_loss("center", R"({"n_classes": 5, "n_dim": 3})");
  EXPECT_TRUE(all_close(a->state().at("_centers._params"), b->state().at("_centers._params"), 0, 0));
  EXPECT_TRUE(a->parameters().at(0).requires_grad());
}

TEST(Center, DistancesScoreTheDetector) {
  const auto dir = temp_dir("center_checkpoint");
  for (const auto& [key, params] : kCases) {
    TensorDict file;
    file.set("loss._centers._params", tensor_of(fx(), "centers_init_" + key));
    io::save_tensor_dict(dir / (key + ".pt"), file);
    const at::Tensor dist = tensor_of(fx(), "distmat_" + key);
    const at::Tensor z = tensor_of(fx(), "inputs_z_" + key);
    const bool feats = key == "random";  // 3-D embedding: score the features of a (5 classes, 3 features) model
    auto det = make_detector("center", std::string(R"({"embedding": ")") + (feats ? "features" : "logits") +
                                           R"(", "checkpoint": ")" + (dir / (key + ".pt")).string() + "\"}");
    IdentityModel model(5, z.size(1));
    det->attach(model);
    const at::Tensor s = feats ? score_views(*det, z, at::Tensor()) : score_logits(*det, z);
    EXPECT_TRUE(all_close(s, std::get<0>(dist.min(1)), 1e-5, 1e-6)) << key;
  }
  EXPECT_THROW(make_detector("center", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  TensorDict no_loss;
  no_loss.set("model.w", at::zeros({2}));
  io::save_tensor_dict(dir / "model_only.pt", no_loss);
  EXPECT_THROW(make_detector("center", R"({"checkpoint": ")" + (dir / "model_only.pt").string() + "\"}"), StateError);
  auto det = make_detector("center", R"({"checkpoint": ")" + (dir / "random.pt").string() + "\"}");
  IdentityModel wrong(5, 5);
  EXPECT_THROW(det->attach(wrong), InvalidArgument);  // logits have 5 dims, centres 3
}

TEST(Center, StateRoundTripKeepsTheOptimisersTensor) {
  auto loss = make_loss("center", R"({"n_classes": 4, "n_dim": 3})");
  const at::Tensor param = loss->parameters().at(0);
  auto other = make_loss("center", R"({"n_classes": 4, "n_dim": 3})");
  other->load_state(centers_state(at::randn({4, 3})));
  loss->load_state(other->state());
  EXPECT_TRUE(loss->parameters().at(0).is_same(param));  // copied in place
  EXPECT_TRUE(all_close(loss->state().at("_centers._params"), other->state().at("_centers._params"), 0, 0));
  const at::Tensor z = at::randn({6, 3}), y = at::tensor({0, 1, 2, 3, -1, 0}, at::kLong);
  EXPECT_TRUE(all_close(run_loss(*loss, z, y).value, run_loss(*other, z, y).value, 0, 0));
  TensorDict bad;
  bad.set("centers", at::zeros({4, 3}));
  EXPECT_THROW(loss->load_state(bad), StateError);
  EXPECT_THROW(loss->load_state(centers_state(at::zeros({4, 2}))), StateError);
}

TEST(Center, HandComputedCaseAndSgdStep) {
  // centres (0,0), (2,0); z = (1,1) of class 1, radius 0.5: d = 2, loss = (2 - 0.5) / (1 * 2) entries
  auto loss = make_loss("center", R"({"n_classes": 2, "n_dim": 2, "radius": 0.5})");
  loss->load_state(centers_state(at::tensor({0.0, 0.0, 2.0, 0.0}, at::kDouble).view({2, 2})));
  const LossRun r = run_loss(*loss, at::tensor({1.0, 1.0}, at::kDouble).view({1, 2}), at::ones({1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 0.75 + 0.5e-12, 1e-15);
  // d/dz = 2 (z - mu_1) / 2 = (-1, 1); d/dmu_1 = (1, -1), d/dmu_0 = 0
  EXPECT_TRUE(all_close(r.grad, at::tensor({-1.0, 1.0}, at::kDouble).view({1, 2}), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(r.grad_param, at::tensor({0.0, 0.0, 1.0, -1.0}, at::kDouble).view({2, 2}), 1e-12, 1e-12));
}

TEST(Center, TakesSizesFromTheModelAndChecksThem) {
  IdentityModel model(4, 6);
  auto on_logits = make_loss("center");
  on_logits->attach(model);
  EXPECT_EQ(on_logits->state().at("_centers._params").sizes(), at::IntArrayRef({4, 4}));
  auto on_features = make_loss("center", R"({"embedding": "features"})");
  on_features->attach(model);
  EXPECT_EQ(on_features->state().at("_centers._params").sizes(), at::IntArrayRef({4, 6}));
  EXPECT_TRUE(std::isfinite(
      run_loss(*on_features, at::randn({5, 6}), at::tensor({0, 1, 2, 3, -1}, at::kLong), true).value.item<float>()));
  EXPECT_THROW(make_loss("center", R"({"n_classes": 3})")->attach(model), InvalidArgument);
  EXPECT_THROW(make_loss("center", R"({"n_dim": 6})")->attach(model), InvalidArgument);  // logits have 4
  EXPECT_THROW(run_loss(*make_loss("center"), at::randn({2, 4}), at::zeros({2}, at::kLong)), StateError);  // not attached
}

TEST(Center, AllOodAndBadTargets) {
  auto loss = make_loss("center", R"({"n_classes": 5, "n_dim": 3})");
  const LossRun r = run_loss(*loss, at::randn({3, 3}), at::full({3}, -1, at::kLong));
  EXPECT_EQ(r.value.item<float>(), 0.0f);
  EXPECT_EQ(r.grad.abs().max().item<float>(), 0.0f);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::zeros({3})), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::zeros({2}, at::kLong)), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::full({3}, 5, at::kLong)), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 4}), at::zeros({3}, at::kLong)), ShapeError);
}

}  // namespace
}  // namespace ood::test
