// background-class against pytorch-ood's BackgroundClassLoss
// (tests/fixtures/reference/losses/background_class.json): every case, values and
// gradients, float32 and float64; targets are NOT modified in place (pytorch-ood
// overwrites them); n_classes from the model; bad targets.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "loss_runs.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

TEST(BackgroundClass, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/background_class.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/background_class.json")));
  ASSERT_EQ(meta["cases"].size(), 3u);
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["targets"]);
    const at::Tensor y_before = y.clone();
    // With n_classes as in the fixture, and without (taken from the logits).
    for (const bool with_n : {true, false}) {
      nlohmann::json params = c["constructor"];
      if (!with_n) params.erase("n_classes");
      auto loss = make_loss("background-class", params.dump());
      at::Tensor grad;
      EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits, y, &grad), tensor_of(fx, key + "_value"), 1e-5, 1e-6))
          << key;
      EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
      EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits.to(at::kDouble), y, &grad),
                            tensor_of(fx, key + "_value_f64"), 1e-10, 1e-12))
          << key;
      EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
    }
    // pytorch-ood's artefact: targets overwritten in place. ood leaves them alone.
    EXPECT_TRUE(at::equal(y, y_before)) << key;
    EXPECT_FALSE(at::equal(y, tensor_of(fx, "targets_after_call"))) << key;
  }
}

TEST(BackgroundClass, HandComputedSegmentation) {
  // One pixel IN (class 0), one OOD (-> class 1) with logits (0, 0): log 2 each.
  auto loss = make_loss("background-class", R"({"reduction": "sum"})");
  const at::Tensor v =
      loss_value_and_grad(*loss, at::zeros({1, 2, 1, 2}, at::kDouble), at::tensor({0, -1}, at::kLong).view({1, 1, 2}),
                          nullptr);
  EXPECT_NEAR(v.item<double>(), 2 * std::log(2.0), 1e-14);
}

TEST(BackgroundClass, GradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(9);
  const at::Tensor logits = at::randn({5, 4}, at::kDouble) * 2;
  const at::Tensor y = at::tensor({0, -1, 2, -3, 1}, at::kLong);
  auto loss = make_loss("background-class", R"({"n_classes": 3})");
  expect_gradient_matches_finite_differences(*loss, logits, y, 1e-8);
}

TEST(BackgroundClass, NumberOfClassesFromTheModel) {
  auto model = make_model("wide-resnet", R"({"num_classes": 6, "depth": 10, "widen_factor": 1})");
  auto absent = make_loss("background-class");
  EXPECT_NO_THROW(absent->attach(*model));
  at::Tensor grad;
  EXPECT_THROW(loss_value_and_grad(*absent, at::randn({2, 5}), at::zeros({2}, at::kLong), nullptr), ShapeError);
  EXPECT_NO_THROW(loss_value_and_grad(*absent, at::randn({2, 6}), at::tensor({4, -1}, at::kLong), nullptr));
  auto right = make_loss("background-class", R"({"n_classes": 5})");
  EXPECT_NO_THROW(right->attach(*model));
  auto wrong = make_loss("background-class", R"({"n_classes": 6})");
  try {
    wrong->attach(*model);
    ADD_FAILURE() << "n_classes 6 for 6 outputs was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("n_classes"), std::string::npos) << e.what();
  }
}

TEST(BackgroundClass, RefusesBadTargets) {
  const auto fx = load_tensor_dict_file("reference/losses/background_class.pt");
  auto loss = make_loss("background-class", R"({"n_classes": 5})");
  // A target equal to n_classes is refused (pytorch-ood: "Target label to large: 5").
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({2, 6}), at::tensor({5, 0}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({2, 6}), at::zeros({2}), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({2, 6}), at::zeros({3}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({2, 4}), at::zeros({2}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(make_loss("background-class", R"({"n_classes": 0})"), InvalidArgument);
  EXPECT_TRUE(loss->state().empty());
  EXPECT_NO_THROW(loss->load_state(loss->state()));
}

}  // namespace
}  // namespace ood::test
