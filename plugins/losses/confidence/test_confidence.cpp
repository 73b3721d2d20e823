// confidence: the formula against pytorch-ood's ConfidenceLoss fixture
// (tests/fixtures/reference/losses/confidence.json) where POLICY.md keeps it, the paper's
// batch means where it does not (values and gradients derived from the fixture, and the
// pytorch-ood artefact NOT reproduced); the learned branch (true gradients w.r.t. its
// parameters, state round trip); the detector with a checkpoint.
#include <nlohmann/json.hpp>

#include "confidence_formula.hpp"
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

struct ConfCase {
  double alpha = 1.0, eps = 1e-24;
};

ConfCase conf_case(const nlohmann::json& c) {
  ConfCase p;
  if (c.contains("alpha")) p.alpha = c["alpha"];
  if (c.contains("eps")) p.eps = c["eps"];
  return p;
}

// Value and gradients of the formula for given logits / confidence (leaves).
at::Tensor formula(const at::Tensor& logits_in, const at::Tensor& conf_in, const at::Tensor& y, const ConfCase& p,
                   at::Tensor* gl, at::Tensor* gc) {
  at::Tensor logits = logits_in.detach().clone().requires_grad_(true);
  at::Tensor conf = conf_in.detach().clone().requires_grad_(true);
  at::Tensor v = ood_confidence::confidence_loss(logits, conf, y, p.alpha, p.eps);
  v.backward();
  *gl = logits.grad();
  *gc = conf.grad();
  return v.detach();
}

TEST(Confidence, FormulaIsThePapersBatchMeanOfPytorchOodsTerms) {
  const auto fx = load_tensor_dict_file("reference/losses/confidence.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/confidence.json")));
  ASSERT_EQ(meta["cases"].size(), 3u);
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    const ConfCase p = conf_case(c["constructor"]);
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor conf = tensor_of(fx, c["inputs"]["confidence"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["target"]);
    const double n = static_cast<double>(y.size(0));
    // The confidence term and its gradient, computed here (float64).
    const at::Tensor c64 = conf.to(at::kDouble).reshape({-1});
    const at::Tensor conf_term = (-at::log(c64.clamp(p.eps, 1.0))).mean();
    const at::Tensor conf_grad = at::where(c64 > p.eps, -1.0 / (n * c64), at::zeros_like(c64)).view({-1, 1});
    at::Tensor expected_value, expected_gl, expected_gc;
    if (key == "all_ood") {
      // pytorch-ood returns a constant 0 [1]; the definition keeps the confidence term.
      EXPECT_EQ(tensor_of(fx, key + "_value").sizes(), at::IntArrayRef({1}));
      expected_value = p.alpha * conf_term;
      expected_gl = at::zeros_like(logits, at::kDouble);
      expected_gc = p.alpha * conf_grad;
    } else {
      // pytorch-ood: SUM_IN nll + alpha * conf; the definition: SUM_IN nll / N + alpha * conf.
      const at::Tensor nll_sum = tensor_of(fx, key + "_value_f64") - p.alpha * conf_term;
      expected_value = nll_sum / n + p.alpha * conf_term;
      expected_gl = tensor_of(fx, key + "_grad_logits_f64") / n;
      expected_gc = (tensor_of(fx, key + "_grad_confidence_f64") - p.alpha * conf_grad) / n + p.alpha * conf_grad;
    }
    at::Tensor gl, gc;
    EXPECT_TRUE(all_close(formula(logits.to(at::kDouble), conf.to(at::kDouble), y, p, &gl, &gc), expected_value, 1e-10,
                          1e-12))
        << key;
    EXPECT_TRUE(all_close(gl, expected_gl, 1e-10, 1e-12)) << key;
    EXPECT_TRUE(all_close(gc, expected_gc, 1e-10, 1e-12)) << key;
    const at::Tensor v32 = formula(logits, conf, y, p, &gl, &gc);
    EXPECT_TRUE(all_close(v32, expected_value.to(at::kFloat), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(gl, expected_gl.to(at::kFloat), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(gc, expected_gc.to(at::kFloat), 1e-5, 1e-6)) << key;
    // The pytorch-ood artefact (NLL summed over IN rows / a constant 0) is not reproduced.
    EXPECT_GT(std::abs(v32.item<double>() - tensor_of(fx, key + "_value").reshape({-1})[0].item<double>()), 1e-3) << key;
  }
}

TEST(Confidence, FormulaEqualsPytorchOodWithOneInSampleAndNoOod) {
  // With N = 1 the mean and the sum coincide: pytorch-ood's number.
  const at::Tensor logits = at::tensor({0.5, -1.0, 2.0}, at::kDouble).view({1, 3});
  const at::Tensor c = at::tensor({0.3}, at::kDouble).view({1, 1});
  at::Tensor gl, gc;
  const at::Tensor v = formula(logits, c, at::tensor({1}, at::kLong), {0.7, 1e-6}, &gl, &gc);
  const double p1 = at::softmax(logits, 1)[0][1].item<double>();
  EXPECT_NEAR(v.item<double>(), -std::log(0.3 * p1 + 0.7) - 0.7 * std::log(0.3), 1e-14);
}

at::Tensor loss_and_grads(Loss& loss, const at::Tensor& logits_in, const at::Tensor& feats_in, const at::Tensor& y,
                          at::Tensor* gl, at::Tensor* gf) {
  at::Tensor logits = logits_in.detach().clone().requires_grad_(true);
  at::Tensor feats = feats_in.detach().clone().requires_grad_(true);
  Views views;
  views.set_logits(logits);
  views.set_features(feats);
  for (auto& p : loss.parameters())
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  at::Tensor v = loss.forward(views, y);
  if (gl) {
    v.backward();
    *gl = logits.grad();
    *gf = feats.grad();
  }
  return v.detach();
}

TEST(Confidence, BranchIsLearnedWithTheTrueGradient) {
  at::manual_seed(21);
  const at::Tensor logits = at::randn({6, 4}, at::kDouble);
  const at::Tensor feats = at::randn({6, 3}, at::kDouble);
  const at::Tensor y = at::tensor({0, -1, 3, 2, -1, 1}, at::kLong);
  auto loss = make_loss("confidence", R"({"alpha": 0.6, "eps": 1e-12})");
  TensorDict st;
  st.set("branch.weight", at::tensor({0.4, -0.2, 0.9}, at::kDouble).view({1, 3}));
  st.set("branch.bias", at::tensor({0.1}, at::kDouble));
  loss->load_state(st);
  ASSERT_EQ(loss->parameters().size(), 2u);
  at::Tensor gl, gf;
  const at::Tensor v = loss_and_grads(*loss, logits, feats, y, &gl, &gf);
  // The value: the formula with c = sigmoid(F w + b).
  const at::Tensor c = at::sigmoid(feats.matmul(st.at("branch.weight").t()) + st.at("branch.bias")).squeeze(1);
  at::Tensor g1, g2;
  EXPECT_NEAR(v.item<double>(), formula(logits, c, y, {0.6, 1e-12}, &g1, &g2).item<double>(), 1e-14);
  // Gradients w.r.t. the branch's parameters, the features and the logits: central differences.
  const std::vector<at::Tensor> params = loss->parameters();
  const at::Tensor gw = params[0].grad().clone(), gb = params[1].grad().clone();
  const double h = 1e-6;
  auto value_with = [&](const at::Tensor& w, const at::Tensor& b, const at::Tensor& z, const at::Tensor& f) {
    auto l = make_loss("confidence", R"({"alpha": 0.6, "eps": 1e-12})");
    TensorDict s;
    s.set("branch.weight", w);
    s.set("branch.bias", b);
    l->load_state(s);
    return loss_and_grads(*l, z, f, y, nullptr, nullptr).item<double>();
  };
  const at::Tensor w0 = st.at("branch.weight"), b0 = st.at("branch.bias");
  for (int64_t i = 0; i < 3; ++i) {
    at::Tensor up = w0.clone(), dn = w0.clone();
    up.view(-1)[i] += h;
    dn.view(-1)[i] -= h;
    EXPECT_NEAR(gw.view(-1)[i].item<double>(), (value_with(up, b0, logits, feats) - value_with(dn, b0, logits, feats)) / (2 * h),
                1e-8);
  }
  EXPECT_NEAR(gb.item<double>(), (value_with(w0, b0 + h, logits, feats) - value_with(w0, b0 - h, logits, feats)) / (2 * h), 1e-8);
  for (int64_t i = 0; i < feats.numel(); ++i) {
    at::Tensor up = feats.clone(), dn = feats.clone();
    up.view(-1)[i] += h;
    dn.view(-1)[i] -= h;
    EXPECT_NEAR(gf.view(-1)[i].item<double>(), (value_with(w0, b0, logits, up) - value_with(w0, b0, logits, dn)) / (2 * h),
                1e-8);
  }
  for (int64_t i = 0; i < logits.numel(); ++i) {
    at::Tensor up = logits.clone(), dn = logits.clone();
    up.view(-1)[i] += h;
    dn.view(-1)[i] -= h;
    EXPECT_NEAR(gl.view(-1)[i].item<double>(), (value_with(w0, b0, up, feats) - value_with(w0, b0, dn, feats)) / (2 * h),
                1e-8);
  }
}

TEST(Confidence, BranchFromTheModelStateRoundTripAndErrors) {
  auto model = make_model("wide-resnet", R"({"num_classes": 4, "depth": 10, "widen_factor": 1})");
  auto loss = make_loss("confidence");
  loss->attach(*model);
  const int64_t d = model->info().feature_dim;
  auto params = loss->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].sizes(), at::IntArrayRef({1, d}));
  EXPECT_TRUE(params[0].requires_grad() && params[1].requires_grad());
  EXPECT_LE(params[0].abs().max().item<double>(), 1.0 / std::sqrt(static_cast<double>(d)));
  const TensorDict saved = loss->state();
  EXPECT_EQ(saved.keys(), (std::vector<std::string>{"branch.weight", "branch.bias"}));
  auto other = make_loss("confidence");
  other->attach(*model);
  other->load_state(saved);
  EXPECT_TRUE(at::equal(other->state().at("branch.weight"), saved.at("branch.weight")));
  EXPECT_TRUE(at::equal(other->state().at("branch.bias"), saved.at("branch.bias")));
  TensorDict bad;
  bad.set("branch.weight", at::zeros({1, d + 1}));
  bad.set("branch.bias", at::zeros({1}));
  EXPECT_THROW(other->load_state(bad), StateError);
  TensorDict missing;
  missing.set("branch.weight", at::zeros({1, d}));
  EXPECT_THROW(other->load_state(missing), StateError);
  // Bad targets.
  at::Tensor gl, gf;
  const at::Tensor f = at::randn({3, d});
  EXPECT_THROW(loss_and_grads(*loss, at::randn({3, 4}), f, at::full({3}, 4, at::kLong), nullptr, nullptr), ShapeError);
  EXPECT_THROW(loss_and_grads(*loss, at::randn({3, 4}), f, at::zeros({3}), nullptr, nullptr), ShapeError);
  EXPECT_THROW(loss_and_grads(*loss, at::randn({3, 4}), f, at::zeros({2}, at::kLong), nullptr, nullptr), ShapeError);
  EXPECT_THROW(loss_and_grads(*loss, at::randn({3, 4}), at::randn({3, d + 2}), at::zeros({3}, at::kLong), nullptr,
                              nullptr),
               ShapeError);
}

TEST(Confidence, DetectorScoresWithTheCheckpointsBranch) {
  const auto dir = temp_dir("confidence_detector");
  TensorDict ckpt;
  ckpt.set("model.fc.weight", at::zeros({2, 3}));
  ckpt.set("loss.branch.weight", at::tensor({1.0f, -2.0f, 0.5f}).view({1, 3}));
  ckpt.set("loss.branch.bias", at::tensor({0.25f}));
  io::save_tensor_dict(dir / "state.pt", ckpt);
  auto det = make_detector("confidence", R"({"checkpoint": ")" + (dir / "state.pt").string() + "\"}");
  const at::Tensor f = at::randn({5, 3});
  const at::Tensor expected = -at::sigmoid(f.matmul(ckpt.at("loss.branch.weight").t()) + 0.25f).squeeze(1);
  EXPECT_TRUE(all_close(score_views(*det, f, at::Tensor()), expected, 1e-6, 1e-7));
  EXPECT_THROW(score_views(*det, at::randn({5, 4}), at::Tensor()), ShapeError);
  EXPECT_THROW(make_detector("confidence", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  TensorDict no_branch;
  no_branch.set("model.fc.weight", at::zeros({2, 3}));
  io::save_tensor_dict(dir / "plain.pt", no_branch);
  EXPECT_THROW(make_detector("confidence", R"({"checkpoint": ")" + (dir / "plain.pt").string() + "\"}"), StateError);
  EXPECT_THROW(make_detector("confidence"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
