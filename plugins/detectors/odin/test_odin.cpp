// odin: the paper's definition (POLICY.md), computed independently in the test from the
// reference model, on closed-form data, and a check that pytorch-ood 0.2's artefact (nll on
// raw scaled logits, T absent from the final softmax: T changes nothing) is not reproduced.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include <fstream>

#include "../mahalanobis/linear_test_model.hpp"
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

using json = nlohmann::json;

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/detectors/odin.pt");
  return d;
}
const json& fx_json() {
  static const json j = json::parse(std::ifstream(fixture("reference/detectors/odin.json")));
  return j;
}
at::Tensor data(const std::string& name) { return tensor_of(reference_data(), name); }

struct Config {
  std::string key;
  double eps, t;
  std::vector<double> norm_std;
  std::string params;  // as JSON for make_detector
};
std::vector<Config> configs() {
  std::vector<Config> out;
  for (const auto& c : fx_json()["configs"]) {
    const json& k = c["constructor"];
    Config cfg{c["key"].get<std::string>(), k["eps"].get<double>(), k["temperature"].get<double>(), {}, ""};
    json p = {{"eps", cfg.eps}, {"temperature", cfg.t}};
    if (!k["norm_std"].is_null()) {
      cfg.norm_std = k["norm_std"].get<std::vector<double>>();
      p["norm_std"] = cfg.norm_std;
    }
    cfg.params = p.dump();
    out.push_back(cfg);
  }
  return out;
}

at::Tensor per_channel(const std::vector<double>& norm_std, std::int64_t channels) {
  if (norm_std.empty()) return at::ones({1, channels, 1, 1}, at::kDouble);
  return at::tensor(norm_std, at::kDouble).view({1, -1, 1, 1});
}

// The paper's gradient, assembled independently of the plugin: grad_x CE(softmax(f/T), y_hat)
// = sum_c (p_c - [c == y_hat]) / T * grad_x f_c, with one backward pass per class.
at::Tensor definition_gradient(Model& model, const at::Tensor& x, double t) {
  at::AutoGradMode enable(true);
  const at::Tensor xr = x.detach().clone().requires_grad_(true);
  const at::Tensor logits = model.logits(xr);
  const at::Tensor l64 = logits.detach().to(at::kDouble);
  const std::int64_t classes = logits.size(1);
  const at::Tensor coeff = (at::softmax(l64 / t, 1) - at::one_hot(l64.argmax(1), classes).to(at::kDouble)) / t;
  at::Tensor grad = at::zeros(x.sizes(), at::kDouble);
  for (std::int64_t c = 0; c < classes; ++c) {
    const at::Tensor jc = torch::autograd::grad({logits.select(1, c).sum()}, {xr}, {}, /*retain_graph=*/true)[0];
    grad += coeff.select(1, c).view({-1, 1, 1, 1}) * jc.to(at::kDouble);
  }
  return grad;
}

at::Tensor definition_scores(Model& model, const at::Tensor& x, const Config& cfg) {
  const at::Tensor grad = definition_gradient(model, x, cfg.t);
  const at::Tensor x_hat = (x.to(at::kDouble) - cfg.eps * grad.sign() / per_channel(cfg.norm_std, x.size(1))).to(x.scalar_type());
  at::NoGradGuard no_grad;
  return -std::get<0>(at::softmax(model.logits(x_hat).to(at::kDouble) / cfg.t, 1).max(1));
}

// pytorch-ood's step direction: sign(grad_x mean_i -f_y_hat(x_i) / T) = -sign(grad_x f_y_hat).
at::Tensor pytorch_ood_sign(Model& model, const at::Tensor& x) {
  at::AutoGradMode enable(true);
  const at::Tensor xr = x.detach().clone().requires_grad_(true);
  const at::Tensor logits = model.logits(xr);
  const at::Tensor picked = logits.gather(1, logits.detach().argmax(1, true)).sum();
  return -torch::autograd::grad({picked}, {xr})[0].sign();
}

TEST(Odin, MatchesThePapersDefinitionOnTheReferenceModel) {
  auto model = reference_model();
  const at::Tensor x = at::cat({data("x_in"), data("x_out")});
  for (const Config& cfg : configs()) {
    auto det = make_detector("odin", cfg.params);
    EXPECT_TRUE(det->needs().input_gradients);
    det->attach(*model);
    const at::Tensor actual = score_on_model(*det, *model, x, 64);
    const at::Tensor expected = definition_scores(*model, x, cfg);
    // The two computations round differently; where a gradient element is ~0 its sign may
    // flip (see grad_sign_mismatch_f32_vs_f64 in the json), which moves a score by far less
    // than the spread of the scores (~1e-3 at T = 1000).
    EXPECT_TRUE(all_close(actual, expected, 1e-6, 2e-7)) << cfg.key;
    // the step raises the tempered MSP of (almost) every sample
    at::Tensor plain;
    {
      at::NoGradGuard no_grad;
      plain = -std::get<0>(at::softmax(model->logits(x).to(at::kDouble) / cfg.t, 1).max(1));
    }
    EXPECT_GE((actual < plain).sum().item<std::int64_t>(), x.size(0) - 2) << cfg.key;
  }
}

TEST(Odin, DoesNotReproducePytorchOodsTemperatureArtefact) {
  auto model = reference_model();
  const at::Tensor x_in = data("x_in");
  const std::vector<Config> cfgs = configs();
  for (const Config& cfg : cfgs) {
    // The test understands pytorch-ood: its step signs are -sign(grad f_y_hat), whatever T.
    for (const char* side : {"in", "out"}) {
      const at::Tensor x = data(std::string("x_") + side).slice(0, 0, 4);
      const at::Tensor fixture_sign = tensor_of(fx(), "grad_sign_" + cfg.key + "_" + side).to(at::kDouble);
      const double artefact_mismatch =
          (pytorch_ood_sign(*model, x).to(at::kDouble) != fixture_sign).to(at::kDouble).mean().item<double>();
      EXPECT_LT(artefact_mismatch, 1e-3) << cfg.key << " " << side;
      const double definition_mismatch =
          (definition_gradient(*model, x, cfg.t).sign() != fixture_sign).to(at::kDouble).mean().item<double>();
      EXPECT_GT(definition_mismatch, 0.01) << cfg.key << " " << side;  // a different step (~3% at T = 1000)
    }
    // ood's scores are not pytorch-ood's (which lack T in the final softmax).
    auto det = make_detector("odin", cfg.params);
    const at::Tensor ours = score_on_model(*det, *model, x_in);
    const at::Tensor theirs = tensor_of(fx(), "scores_" + cfg.key + "_in");
    EXPECT_GT((ours - theirs).abs().max().item<double>(), 0.05) << cfg.key;
  }
  // In pytorch-ood T changes nothing; here it changes the scores.
  const Config& c0 = cfgs.at(0);
  auto hot = make_detector("odin", json{{"eps", c0.eps}, {"temperature", 1000.0}}.dump());
  auto cold = make_detector("odin", json{{"eps", c0.eps}, {"temperature", 1.0}}.dump());
  const at::Tensor s_hot = score_on_model(*hot, *model, x_in), s_cold = score_on_model(*cold, *model, x_in);
  EXPECT_LT(s_hot.max().item<double>(), -0.09);  // close to -1/C at T = 1000
  EXPECT_GT((s_hot - s_cold).abs().max().item<double>(), 0.1);
}

TEST(Odin, KnownAnswerOnALinearModel) {
  // f(x) = W A x + b: grad_x CE = A^T W^T (p - e_y_hat) / T.
  LinearTestModel model(2, 3, 5, 4, 21);
  at::Generator gen = at::detail::createCPUGenerator(22);
  const at::Tensor x = at::randn({30, 2, 3, 3}, gen, at::kDouble) * 2.0;
  for (const double t : {1.0, 3.0, 1000.0}) {
    const std::vector<double> norm_std{0.5, 2.0};
    auto det = make_detector("odin", json{{"eps", 0.03}, {"temperature", t}, {"norm_std", norm_std}}.dump());
    det->attach(model);
    const at::Tensor logits = model.logits(x);
    const at::Tensor coeff = at::softmax(logits / t, 1) - at::one_hot(logits.argmax(1), 4).to(at::kDouble);
    const at::Tensor grad = at::mm(at::mm(coeff / t, model.w()), model.a()).view_as(x);
    const at::Tensor x_hat = x - 0.03 * grad.sign() / per_channel(norm_std, 2);
    const at::Tensor expected = -std::get<0>(at::softmax(model.logits(x_hat) / t, 1).max(1));
    EXPECT_TRUE(all_close(score_on_model(*det, model, x, 7), expected, 1e-12, 1e-14)) << t;
  }
}

TEST(Odin, WithoutAStepIsTheTemperedMaxSoftmaxOfTheSharedLogits) {
  auto det = make_detector("odin", R"({"eps": 0, "temperature": 2.5})");
  EXPECT_FALSE(det->needs().input_gradients);
  EXPECT_TRUE(det->needs().logits);
  auto msp = make_detector("max-softmax", R"({"t": 2.5})");
  const at::Tensor logits = data("logits_out");
  EXPECT_TRUE(all_close(score_logits(*det, logits), score_logits(*msp, logits), 1e-6, 1e-7));
}

TEST(Odin, NeedsNoFitAndHasNoState) {
  auto det = make_detector("odin");
  EXPECT_FALSE(det->needs().fit);
  EXPECT_TRUE(det->is_fitted());
  EXPECT_TRUE(det->state().empty());
  EXPECT_NO_THROW(det->load_state(TensorDict()));
  TensorDict junk;
  junk.set("t", at::ones({1}));
  EXPECT_THROW(det->load_state(junk), StateError);
}

TEST(Odin, RefusesBadParametersAndInputs) {
  EXPECT_THROW(make_detector("odin", R"({"temperature": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("odin", R"({"eps": -0.01})"), InvalidArgument);
  EXPECT_THROW(make_detector("odin", R"({"norm_std": [0.2, -0.1, 0.3]})"), InvalidArgument);
  EXPECT_THROW(make_detector("odin", R"({"norm_std": "0.2"})"), InvalidArgument);
  EXPECT_THROW(make_detector("odin", R"({"t": 2})"), InvalidArgument);
  try {
    make_detector("odin", R"({"norm_std": [0.2, 0.3]})")->attach(*reference_model());
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/norm_std: 2 values for a model with 3 input channels", 0), 0u)
        << e.what();
  }
  // not attached: the channel count is checked on the inputs
  LinearTestModel model(2, 3, 5, 4, 21);
  auto three = make_detector("odin", R"({"norm_std": [0.2, 0.3, 0.4]})");
  EXPECT_THROW(score_on_model(*three, model, at::randn({2, 2, 3, 3}, at::kDouble)), ShapeError);
  // a perturbation needs the model
  EXPECT_THROW(score_logits(*make_detector("odin"), data("logits_in")), StateError);
  // wrong logits
  EXPECT_THROW(score_logits(*make_detector("odin", R"({"eps": 0})"), at::ones({3})), ShapeError);
}

}  // namespace
}  // namespace ood::test
