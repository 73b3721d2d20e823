// Parity of outlier-exposure with pytorch-ood's OutlierExposureLoss: every case of
// tests/fixtures/reference/losses/outlier_exposure.json (values and gradients, float32
// and float64), a hand-computed case, the true gradient on other sizes, bad targets.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "loss_runs.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

TEST(OutlierExposure, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/outlier_exposure.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/outlier_exposure.json")));
  ASSERT_EQ(meta["cases"].size(), 13u);
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    auto loss = make_loss("outlier-exposure", c["constructor"].dump());
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["target"]);
    at::Tensor grad;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits, y, &grad), tensor_of(fx, key + "_value"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits.to(at::kDouble), y, &grad), tensor_of(fx, key + "_value_f64"),
                          1e-10, 1e-12))
        << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
  }
}

TEST(OutlierExposure, HandComputedCase) {
  // IN row: logits (1, 0), class 0: log(1 + e^-1). OOD row: logits (0, 2): alpha * (log(1 + e^2) - 1).
  auto loss = make_loss("outlier-exposure", R"({"alpha": 0.25, "reduction": "none"})");
  const at::Tensor logits = at::tensor({1.0, 0.0, 0.0, 2.0}, at::kDouble).view({2, 2});
  const at::Tensor v = loss_value_and_grad(*loss, logits, at::tensor({0, -1}, at::kLong), nullptr);
  EXPECT_NEAR(v[0].item<double>(), std::log1p(std::exp(-1.0)), 1e-14);
  EXPECT_NEAR(v[1].item<double>(), 0.25 * (std::log1p(std::exp(2.0)) - 1.0), 1e-14);
}

TEST(OutlierExposure, GradientIsTheTrueGradientOnOtherSizes) {
  // 9 samples, 7 classes, float64: autograd equals central finite differences.
  at::manual_seed(7);
  const at::Tensor logits = at::randn({9, 7}, at::kDouble) * 3;
  const at::Tensor y = at::tensor({0, 6, -1, 3, -1, 2, 5, -1, 1}, at::kLong);
  auto loss = make_loss("outlier-exposure", R"({"alpha": 0.7})");
  expect_gradient_matches_finite_differences(*loss, logits, y, 1e-8);
}

TEST(OutlierExposure, InputsAreNotModified) {
  auto loss = make_loss("outlier-exposure");
  const at::Tensor y = at::tensor({0, -1, 2}, at::kLong);
  const at::Tensor y_copy = y.clone();
  const at::Tensor logits = at::randn({3, 3});
  loss_value_and_grad(*loss, logits, y, nullptr);
  EXPECT_TRUE(at::equal(y, y_copy));
}

TEST(OutlierExposure, RefusesBadTargets) {
  auto loss = make_loss("outlier-exposure");
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({4}), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({5}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({2, 3, 4, 4}), at::zeros({2, 4, 5}, at::kLong), nullptr),
               ShapeError);
  try {
    loss_value_and_grad(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), nullptr);
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("outlier-exposure"), std::string::npos);
  }
  EXPECT_THROW(make_loss("outlier-exposure", R"({"reduction": "avg"})"), InvalidArgument);
}

TEST(OutlierExposure, StateIsEmptyAndRoundTrips) {
  auto loss = make_loss("outlier-exposure");
  EXPECT_TRUE(loss->state().empty());
  EXPECT_NO_THROW(loss->load_state(loss->state()));
  EXPECT_TRUE(loss->parameters().empty());
}

}  // namespace
}  // namespace ood::test
