// objectosphere against pytorch-ood's ObjectosphereLoss
// (tests/fixtures/reference/losses/objectosphere.json): every case, values and
// gradients w.r.t. logits and features, float32 and float64; the detector (score);
// bad targets; the true gradient on other sizes.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

at::Tensor os_value_and_grad(Loss& loss, const at::Tensor& logits_in, const at::Tensor& features_in,
                             const at::Tensor& y, at::Tensor* grad_logits, at::Tensor* grad_features) {
  at::Tensor logits = logits_in.detach().clone().requires_grad_(true);
  at::Tensor features = features_in.detach().clone().requires_grad_(true);
  Views views;
  views.set_logits(logits);
  views.set_features(features);
  at::Tensor value = loss.forward(views, y);
  if (grad_logits) {
    (value.dim() == 0 ? value : value.sum()).backward();
    *grad_logits = logits.grad();
    *grad_features = features.grad();
  }
  return value.detach();
}

TEST(Objectosphere, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/objectosphere.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/objectosphere.json")));
  ASSERT_EQ(meta["cases"].size(), 6u);
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    auto loss = make_loss("objectosphere", c["constructor"].dump());
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor features = tensor_of(fx, c["inputs"]["features"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["target"]);
    at::Tensor gl, gf;
    EXPECT_TRUE(all_close(os_value_and_grad(*loss, logits, features, y, &gl, &gf), tensor_of(fx, key + "_value"), 1e-5,
                          1e-6))
        << key;
    EXPECT_TRUE(all_close(gl, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(gf, tensor_of(fx, key + "_grad_features"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(os_value_and_grad(*loss, logits.to(at::kDouble), features.to(at::kDouble), y, &gl, &gf),
                          tensor_of(fx, key + "_value_f64"), 1e-10, 1e-12))
        << key;
    EXPECT_TRUE(all_close(gl, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
    EXPECT_TRUE(all_close(gf, tensor_of(fx, key + "_grad_features_f64"), 1e-10, 1e-12)) << key;
  }
}

TEST(Objectosphere, HandComputedCase) {
  // IN, features (0.3, 0.4): ||F|| = 0.5, xi 2: (1.5)^2. OOD features (1, 2): 5. Logits 0: EOS = log 2.
  auto loss = make_loss("objectosphere", R"({"alpha": 0.1, "xi": 2.0, "reduction": "none"})");
  const at::Tensor f = at::tensor({0.3, 0.4, 1.0, 2.0}, at::kDouble).view({2, 2});
  const at::Tensor v = os_value_and_grad(*loss, at::zeros({2, 2}, at::kDouble), f, at::tensor({1, -1}, at::kLong),
                                         nullptr, nullptr);
  EXPECT_NEAR(v[0].item<double>(), std::log(2.0) + 0.1 * 2.25, 1e-14);
  EXPECT_NEAR(v[1].item<double>(), std::log(2.0) + 0.1 * 5.0, 1e-14);
}

TEST(Objectosphere, GradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(5);
  const at::Tensor logits = at::randn({6, 3}, at::kDouble);
  const at::Tensor features = at::randn({6, 7}, at::kDouble) * 0.6;
  const at::Tensor y = at::tensor({0, -1, 2, -1, 1, 1}, at::kLong);
  auto loss = make_loss("objectosphere", R"({"alpha": 0.5, "xi": 2.0})");
  at::Tensor gl, gf;
  os_value_and_grad(*loss, logits, features, y, &gl, &gf);
  const double h = 1e-6;
  for (const bool on_features : {false, true}) {
    const at::Tensor& x = on_features ? features : logits;
    const at::Tensor& g = on_features ? gf : gl;
    for (int64_t i = 0; i < x.numel(); ++i) {
      at::Tensor up = x.clone(), down = x.clone();
      up.view(-1)[i] += h;
      down.view(-1)[i] -= h;
      const double fu = on_features ? os_value_and_grad(*loss, logits, up, y, nullptr, nullptr).item<double>()
                                    : os_value_and_grad(*loss, up, features, y, nullptr, nullptr).item<double>();
      const double fdn = on_features ? os_value_and_grad(*loss, logits, down, y, nullptr, nullptr).item<double>()
                                     : os_value_and_grad(*loss, down, features, y, nullptr, nullptr).item<double>();
      EXPECT_NEAR(g.view(-1)[i].item<double>(), (fu - fdn) / (2 * h), 1e-8) << on_features << " " << i;
    }
  }
  // Zero features of an IN sample: finite gradient.
  os_value_and_grad(*loss, logits, at::zeros({6, 7}, at::kDouble), y, &gl, &gf);
  EXPECT_TRUE(at::isfinite(gf).all().item<bool>());
}

TEST(Objectosphere, RefusesBadTargetsAndKeepsInputs) {
  auto loss = make_loss("objectosphere");
  const at::Tensor f = at::randn({4, 2});
  EXPECT_THROW(os_value_and_grad(*loss, at::randn({4, 3}), f, at::zeros({4}), nullptr, nullptr), ShapeError);
  EXPECT_THROW(os_value_and_grad(*loss, at::randn({4, 3}), f, at::zeros({5}, at::kLong), nullptr, nullptr), ShapeError);
  EXPECT_THROW(os_value_and_grad(*loss, at::randn({4, 3}), f, at::full({4}, 3, at::kLong), nullptr, nullptr),
               ShapeError);
  EXPECT_THROW(os_value_and_grad(*loss, at::randn({4, 3}), at::randn({5, 2}), at::zeros({4}, at::kLong), nullptr,
                                 nullptr),
               ShapeError);
  const at::Tensor y = at::tensor({0, -1, 2, 1}, at::kLong), y_copy = y.clone();
  os_value_and_grad(*loss, at::randn({4, 3}), f, y, nullptr, nullptr);
  EXPECT_TRUE(at::equal(y, y_copy));
  EXPECT_TRUE(loss->state().empty());
  EXPECT_NO_THROW(loss->load_state(loss->state()));
}

TEST(Objectosphere, DetectorMatchesPytorchOodScore) {
  const auto fx = load_tensor_dict_file("reference/losses/objectosphere.pt");
  auto det = make_detector("objectosphere");
  EXPECT_TRUE(all_close(score_logits(*det, tensor_of(fx, "inputs_logits")), tensor_of(fx, "score"), 1e-5, 1e-6));
  EXPECT_THROW(make_detector("objectosphere", R"({"checkpoint": "/nonexistent/state.pt"})"), FileError);
}

}  // namespace
}  // namespace ood::test
