// entropic-open-set against pytorch-ood's EntropicOpenSetLoss
// (tests/fixtures/reference/losses/entropic_open_set.json): every case, values and
// gradients, float32 and float64; the detector; bad targets; the true gradient.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "loss_runs.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

TEST(EntropicOpenSet, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/entropic_open_set.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/entropic_open_set.json")));
  ASSERT_EQ(meta["cases"].size(), 6u);
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    auto loss = make_loss("entropic-open-set", c["constructor"].dump());
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["target"]);
    at::Tensor grad;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits, y, &grad), tensor_of(fx, key + "_value"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits.to(at::kDouble), y, &grad),
                          tensor_of(fx, key + "_value_f64"), 1e-10, 1e-12))
        << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
  }
}

TEST(EntropicOpenSet, HandComputedCase) {
  // OOD row with logits (0, log 3): softmax (1/4, 3/4); -(log(1/4) + log(3/4)) / 2.
  auto loss = make_loss("entropic-open-set", R"({"reduction": "sum"})");
  const at::Tensor logits = at::tensor({0.0, std::log(3.0)}, at::kDouble).view({1, 2});
  const at::Tensor v = loss_value_and_grad(*loss, logits, at::tensor({-1}, at::kLong), nullptr);
  EXPECT_NEAR(v.item<double>(), -(std::log(0.25) + std::log(0.75)) / 2, 1e-14);
}

TEST(EntropicOpenSet, GradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(3);
  const at::Tensor logits = at::randn({7, 4}, at::kDouble) * 2;
  const at::Tensor y = at::tensor({0, -1, 3, -1, 2, 1, -5}, at::kLong);
  auto loss = make_loss("entropic-open-set");
  expect_gradient_matches_finite_differences(*loss, logits, y, 1e-8);
}

TEST(EntropicOpenSet, RefusesBadTargetsAndKeepsInputs) {
  auto loss = make_loss("entropic-open-set");
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({4}), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({5}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(make_loss("entropic-open-set", R"({"reduction": "avg"})"), InvalidArgument);
  const at::Tensor y = at::tensor({0, -1, 2}, at::kLong), y_copy = y.clone();
  loss_value_and_grad(*loss, at::randn({3, 3}), y, nullptr);
  EXPECT_TRUE(at::equal(y, y_copy));
  EXPECT_TRUE(loss->state().empty());
  EXPECT_NO_THROW(loss->load_state(loss->state()));
}

TEST(EntropicOpenSet, DetectorScoresNegativeMaxSoftmax) {
  const auto fx = load_tensor_dict_file("reference/losses/entropic_open_set.pt");
  const at::Tensor logits = tensor_of(fx, "inputs_logits");
  auto det = make_detector("entropic-open-set");
  EXPECT_TRUE(all_close(score_logits(*det, logits), -std::get<0>(at::softmax(logits, 1).max(1)), 1e-6, 1e-7));
  // An optional checkpoint must be readable.
  EXPECT_THROW(make_detector("entropic-open-set", R"({"checkpoint": "/nonexistent/state.pt"})"), FileError);
  const auto dir = temp_dir("entropic_open_set_ckpt");
  TensorDict state;
  state.set("model.fc.weight", at::ones({2, 2}));
  io::save_tensor_dict(dir / "train_state.pt", state);
  EXPECT_NO_THROW(make_detector("entropic-open-set", R"({"checkpoint": ")" + (dir / "train_state.pt").string() + "\"}"));
}

}  // namespace
}  // namespace ood::test
