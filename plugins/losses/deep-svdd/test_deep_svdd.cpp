// Deep SVDD loss and detector: parity with pytorch-ood's DeepSVDDLoss (every case and
// reduction of the fixture, float32 and float64), the paper's first-batch centre, and the
// detector's distance.
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

TEST(DeepSvdd, MatchesPytorchOodForEveryCase) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>());
  const at::Tensor all_in = at::zeros_like(y);  // y = None in pytorch-ood: every sample IN
  const std::string center = json_list(tensor_of(fx(), "inputs_center"));
  std::vector<std::tuple<std::string, std::string, at::Tensor>> cases;
  for (const std::string red : {"mean", "sum", "none"}) {
    const std::string params = R"({"n_dim": 4, "radius": 0.8, "reduction": ")" + red + R"(", "center": )" + center + "}";
    cases.emplace_back("svdd_center_" + red, params, y);
    cases.emplace_back("svdd_center_noy_" + red, params, all_in);
  }
  cases.emplace_back("svdd_default", R"({"n_dim": 4, "center": )" + json_list(tensor_of(fx(), "svdd_random_center")) + "}",
                     y);
  for (const auto& [key, params, targets] : cases) {
    auto loss = make_loss("deep-svdd", params);
    for (const bool f64 : {false, true}) {
      const std::string sfx = f64 ? "_f64" : "";
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      const LossRun r = run_loss(*loss, f64 ? x.to(at::kDouble) : x, targets);
      EXPECT_TRUE(all_close(r.value, tensor_of(fx(), key + "_value" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), key + "_grad_x" + sfx), rtol, atol)) << key << sfx;
    }
  }
}

TEST(DeepSvdd, DetectorScoresTheDistance) {
  const at::Tensor x = tensor_of(fx(), "inputs_x");
  const at::Tensor c = tensor_of(fx(), "svdd_random_center");
  IdentityModel model(4, 4);
  auto det = make_detector("deep-svdd", R"({"center": )" + json_list(c) + "}");
  det->attach(model);
  EXPECT_TRUE(all_close(score_logits(*det, x), tensor_of(fx(), "svdd_distance"), 1e-5, 1e-6));

  const auto dir = temp_dir("deep_svdd_checkpoint");
  auto loss = make_loss("deep-svdd", R"({"center": )" + json_list(c) + "}");
  TensorDict file;
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto from_file = make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  from_file->attach(model);
  EXPECT_TRUE(all_close(score_logits(*from_file, x), tensor_of(fx(), "svdd_distance"), 1e-5, 1e-6));
  // radius: score = d - r^2
  auto with_r = make_detector("deep-svdd", R"({"radius": 0.5, "center": )" + json_list(c) + "}");
  EXPECT_TRUE(all_close(score_logits(*with_r, x), tensor_of(fx(), "svdd_distance") - 0.25, 1e-5, 1e-6));

  TensorDict empty;
  empty.set("model.w", at::zeros({1}));
  io::save_tensor_dict(dir / "no_center.pt", empty);
  EXPECT_THROW(make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "no_center.pt").string() + "\"}"), StateError);
  EXPECT_THROW(make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  EXPECT_THROW(make_detector("deep-svdd"), InvalidArgument);  // neither checkpoint nor center
  IdentityModel three(3, 3);
  auto det3 = make_detector("deep-svdd", R"({"center": )" + json_list(c) + "}");
  EXPECT_THROW(det3->attach(three), InvalidArgument);
}

TEST(DeepSvdd, CentreIsTheMeanOfTheFirstBatch) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  auto loss = make_loss("deep-svdd", R"({"radius": 0.8})");
  IdentityModel model(4, 4);
  loss->attach(model);
  EXPECT_TRUE(loss->state().empty());
  // a batch without IN samples does not set it
  EXPECT_EQ(run_loss(*loss, x, at::full_like(y, -1)).value.item<float>(), 0.0f);
  EXPECT_TRUE(loss->state().empty());
  const LossRun first = run_loss(*loss, x, y);
  const at::Tensor mean = x.index({y >= 0}).mean(0, true);
  EXPECT_TRUE(all_close(loss->state().at("_center._params"), mean, 0, 0));
  auto explicit_center = make_loss("deep-svdd", R"({"radius": 0.8, "center": )" + json_list(mean) + "}");
  EXPECT_TRUE(all_close(first.value, run_loss(*explicit_center, x, y).value, 0, 0));
  // kept: a second batch does not move it
  run_loss(*loss, x * 2, y);
  EXPECT_TRUE(all_close(loss->state().at("_center._params"), mean, 0, 0));
  EXPECT_EQ(loss->parameters().size(), 0u);
}

TEST(DeepSvdd, HandComputedCase) {
  // c = (1, 0), r = 1: z = (3, 0) IN -> 4 - 1 = 3; z = (1, 0.5) IN -> relu(0.25 - 1) = 0; OOD -> 0
  auto loss = make_loss("deep-svdd", R"({"radius": 1.0, "center": [1, 0], "reduction": "sum"})");
  const LossRun r = run_loss(*loss, at::tensor({3.0, 0.0, 1.0, 0.5, 9.0, 9.0}, at::kDouble).view({3, 2}),
                       at::tensor({0, 0, -1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 3.0, 1e-12);
  EXPECT_TRUE(all_close(r.grad, at::tensor({4.0, 0.0, 0.0, 0.0, 0.0, 0.0}, at::kDouble).view({3, 2}), 1e-12, 1e-12));
}

TEST(DeepSvdd, StateRoundTripAndBadInputs) {
  auto loss = make_loss("deep-svdd", R"({"center": [1, 2, 3, 4]})");
  auto restored = make_loss("deep-svdd");
  restored->load_state(loss->state());
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  EXPECT_TRUE(all_close(run_loss(*restored, x, y).value, run_loss(*loss, x, y).value, 0, 0));
  TensorDict bad;
  bad.set("center", at::zeros({1, 4}));
  EXPECT_THROW(restored->load_state(bad), StateError);
  TensorDict wrong;
  wrong.set("_center._params", at::zeros({1, 3}));
  EXPECT_THROW(restored->load_state(wrong), StateError);
  EXPECT_THROW(run_loss(*loss, x, at::zeros({12})), ShapeError);
  EXPECT_THROW(run_loss(*loss, x, at::zeros({11}, at::kLong)), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({2, 3}), at::zeros({2}, at::kLong)), ShapeError);
  IdentityModel model(5, 4);
  EXPECT_THROW(make_loss("deep-svdd", R"({"n_dim": 4})")->attach(model), InvalidArgument);  // logits have 5
  make_loss("deep-svdd", R"({"n_dim": 4, "embedding": "features"})")->attach(model);
  EXPECT_THROW(make_loss("deep-svdd", R"({"n_dim": 3, "center": [1, 2]})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
