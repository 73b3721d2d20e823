// CAC loss and detector: pytorch-ood's distances and score, the paper's tuplet term (every
// class but the target; the fixture holds pytorch-ood's columns 0..C-2 artefact, which a
// test-side reference reproduces to validate itself and the plugin must not).
#include "test_support.hpp"

#include "loss_runs.hpp"
#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/cac.pt");
  return d;
}

/// Independent float64 reference: d by broadcasting; `artefact` = pytorch-ood's columns
/// 0..C-2 for every row, else every class but the target (the paper).
LossRun reference(const at::Tensor& z_in, const at::Tensor& y, double magnitude, double alpha, bool artefact) {
  at::Tensor z = z_in.detach().to(at::kDouble).clone().requires_grad_(true);
  const std::int64_t c = z.size(1);
  const at::Tensor anchors = at::eye(c, at::kDouble) * magnitude;
  const at::Tensor d = (z.unsqueeze(1) - anchors.unsqueeze(0)).pow(2).sum(2);
  at::Tensor anchor_sum = at::zeros({}, at::kDouble), tuplet_sum = at::zeros({}, at::kDouble);
  int n = 0;
  for (std::int64_t i = 0; i < z.size(0); ++i) {
    const std::int64_t yi = y[i].item<std::int64_t>();
    if (yi < 0) continue;
    ++n;
    anchor_sum = anchor_sum + d[i][yi];
    at::Tensor s = at::zeros({}, at::kDouble);
    for (std::int64_t j = 0; j < c; ++j) {
      const bool used = artefact ? j < c - 1 : j != yi;
      if (used) s = s + (d[i][yi] - d[i][j]).clamp_max(50).exp();
    }
    tuplet_sum = tuplet_sum + at::log(1 + s);
  }
  at::Tensor value = n ? alpha * anchor_sum / n + tuplet_sum / n : z.sum() * 0;
  value.backward();
  return {value.detach(), z.grad(), at::Tensor()};
}

TEST(Cac, ReferenceReproducesPytorchOodArtefact) {
  const at::Tensor z = tensor_of(fx(), "inputs_z"), y = tensor_of(fx(), "inputs_y");
  for (auto [key, mag, alpha] : {std::tuple<std::string, double, double>{"default", 1.0, 1.0}, {"custom", 5.0, 0.2}}) {
    const LossRun r = reference(z, y, mag, alpha, true);
    EXPECT_TRUE(all_close(r.value, tensor_of(fx(), key + "_value_f64"), 1e-10, 1e-12)) << key;
    EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), key + "_grad_z_f64"), 1e-10, 1e-12)) << key;
  }
}

TEST(Cac, FollowsThePaperNotThePytorchOodArtefact) {
  const at::Tensor z = tensor_of(fx(), "inputs_z"), y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y == 4).any().item<bool>() && (y < 0).any().item<bool>());
  for (auto [key, params, mag, alpha] :
       {std::tuple<std::string, std::string, double, double>{"default", R"({"n_classes": 5})", 1.0, 1.0},
        {"custom", R"({"n_classes": 5, "magnitude": 5.0, "alpha": 0.2})", 5.0, 0.2}}) {
    auto loss = make_loss("cac", params);
    const LossRun def = reference(z, y, mag, alpha, false);
    const LossRun r32 = run_loss(*loss, z, y);
    EXPECT_EQ(r32.value.scalar_type(), at::kFloat);
    EXPECT_TRUE(all_close(r32.value, def.value, 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(r32.grad, def.grad, 1e-5, 1e-6)) << key;
    const LossRun r64 = run_loss(*loss, z.to(at::kDouble), y);
    EXPECT_TRUE(all_close(r64.value, def.value, 1e-10, 1e-12)) << key;
    EXPECT_TRUE(all_close(r64.grad, def.grad, 1e-10, 1e-12)) << key;
    // not pytorch-ood's value: the artefact changes the value by far more than the tolerance
    EXPECT_GT((r64.value - tensor_of(fx(), key + "_value_f64")).abs().item<double>(), 1e-3) << key;
    EXPECT_GT((r64.grad - tensor_of(fx(), key + "_grad_z_f64")).abs().max().item<double>(), 1e-3) << key;
  }
}

TEST(Cac, RowsOfTheLastClassEqualPytorchOod) {
  // for y = C-1 pytorch-ood's columns 0..C-2 are exactly the other classes
  const at::Tensor z = tensor_of(fx(), "inputs_z"), y = tensor_of(fx(), "inputs_y");
  const at::Tensor y_last = at::where(y == 4, y, at::full_like(y, -1));
  auto loss = make_loss("cac", R"({"n_classes": 5, "magnitude": 5.0, "alpha": 0.2})");
  const LossRun lib = reference(z, y_last, 5.0, 0.2, true);
  const LossRun r = run_loss(*loss, z.to(at::kDouble), y_last);
  EXPECT_TRUE(all_close(r.value, lib.value, 1e-10, 1e-12));
  EXPECT_TRUE(all_close(r.grad, lib.grad, 1e-10, 1e-12));
}

TEST(Cac, AllOodGivesZero) {
  auto loss = make_loss("cac", R"({"n_classes": 5})");
  const LossRun r = run_loss(*loss, tensor_of(fx(), "inputs_z"), tensor_of(fx(), "inputs_y_ood"));
  EXPECT_TRUE(all_close(r.value, tensor_of(fx(), "all_ood_value"), 1e-5, 1e-6));
  EXPECT_EQ(r.grad.abs().max().item<float>(), 0.0f);
}

TEST(Cac, HandComputedCase) {
  // C = 2, magnitude 1: z = (0, 0), y = 0 -> d = (1, 1); loss = alpha * 1 + log(1 + e^0)
  auto loss = make_loss("cac", R"({"n_classes": 2, "alpha": 0.5})");
  const LossRun r = run_loss(*loss, at::zeros({1, 2}, at::kDouble), at::zeros({1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 0.5 + std::log(2.0), 1e-12);
  // d loss / d z = 0.5 * dd_0/dz + 0.5 * (dd_0/dz - dd_1/dz); dd_k/dz = 2 (z - a_k)
  EXPECT_TRUE(all_close(r.grad, at::tensor({-2.0, 1.0}, at::kDouble).view({1, 2}), 1e-12, 1e-12));
}

TEST(Cac, DetectorMatchesPytorchOodScore) {
  const at::Tensor z = tensor_of(fx(), "inputs_z");
  IdentityModel model(5, 5);
  for (auto [key, params] : {std::pair<std::string, std::string>{"default", "{}"}, {"custom", R"({"magnitude": 5.0})"}}) {
    auto det = make_detector("cac", params);
    det->attach(model);
    EXPECT_TRUE(all_close(score_logits(*det, z), tensor_of(fx(), "score_" + key), 1e-5, 1e-6)) << key;
  }
}

TEST(Cac, DetectorReadsTheAnchorsFromTheCheckpoint) {
  const auto dir = temp_dir("cac_checkpoint");
  auto loss = make_loss("cac", R"({"magnitude": 5.0})");
  IdentityModel model(5, 5);
  loss->attach(model);
  TensorDict file;
  file.set("model.w", at::zeros({2}));
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto det = make_detector("cac", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  det->attach(model);
  EXPECT_TRUE(all_close(score_logits(*det, tensor_of(fx(), "inputs_z")), tensor_of(fx(), "score_custom"), 1e-5, 1e-6));

  TensorDict no_loss;
  no_loss.set("model.w", at::zeros({2}));
  io::save_tensor_dict(dir / "model_only.pt", no_loss);
  EXPECT_THROW(make_detector("cac", R"({"checkpoint": ")" + (dir / "model_only.pt").string() + "\"}"), StateError);
  EXPECT_THROW(make_detector("cac", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  auto det3 = make_detector("cac", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  IdentityModel three(3, 3);
  EXPECT_THROW(det3->attach(three), InvalidArgument);
}

TEST(Cac, StateRoundTrip) {
  auto loss = make_loss("cac", R"({"n_classes": 5, "magnitude": 3.0})");
  auto restored = make_loss("cac", R"({"n_classes": 5})");
  restored->load_state(loss->state());
  const at::Tensor z = tensor_of(fx(), "inputs_z"), y = tensor_of(fx(), "inputs_y");
  EXPECT_TRUE(all_close(run_loss(*restored, z, y).value, run_loss(*loss, z, y).value, 0, 0));
  EXPECT_EQ(loss->parameters().size(), 0u);  // fixed anchors
  TensorDict bad;
  bad.set("anchors", at::eye(5));
  EXPECT_THROW(restored->load_state(bad), StateError);
  TensorDict wrong_shape;
  wrong_shape.set("_centers._params", at::eye(4));
  EXPECT_THROW(restored->load_state(wrong_shape), StateError);
}

TEST(Cac, TakesTheClassesFromTheModelAndChecksThem) {
  auto loss = make_loss("cac");
  IdentityModel model(3, 7);
  loss->attach(model);
  const LossRun r = run_loss(*loss, at::randn({4, 3}), at::tensor({0, 1, 2, -1}, at::kLong));
  EXPECT_TRUE(std::isfinite(r.value.item<float>()));
  EXPECT_THROW(make_loss("cac", R"({"n_classes": 4})")->attach(model), InvalidArgument);
  EXPECT_THROW(make_loss("cac", R"({"embedding": "features"})")->attach(model), InvalidArgument);  // 7 != 3
  auto on_features = make_loss("cac", R"({"embedding": "features"})");
  IdentityModel square(3, 3);
  on_features->attach(square);
  EXPECT_TRUE(std::isfinite(run_loss(*on_features, at::randn({4, 3}), at::tensor({0, 1, 2, -1}, at::kLong), true)
                                .value.item<float>()));
}

TEST(Cac, RefusesBadTargets) {
  auto loss = make_loss("cac", R"({"n_classes": 5})");
  const at::Tensor z = tensor_of(fx(), "inputs_z");
  EXPECT_THROW(run_loss(*loss, z, at::zeros({12})), ShapeError);                  // float targets
  EXPECT_THROW(run_loss(*loss, z, at::zeros({11}, at::kLong)), ShapeError);       // wrong size
  EXPECT_THROW(run_loss(*loss, z, at::full({12}, 5, at::kLong)), ShapeError);     // class index >= C
  EXPECT_THROW(run_loss(*loss, at::randn({12, 4}), at::zeros({12}, at::kLong)), ShapeError);  // wrong embedding size
  EXPECT_THROW(make_loss("cac", R"({"magnitude": 0})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
