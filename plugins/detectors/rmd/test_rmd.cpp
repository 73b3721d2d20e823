// rmd: the paper's definition (POLICY.md) computed in the test from the fixture's inputs,
// a check that pytorch-ood 0.2's artefacts (unnormalised background covariance, silent
// eps = 0.002 perturbation) are not reproduced, closed-form answers, state and errors.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include <fstream>

#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

using json = nlohmann::json;

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/detectors/rmd.pt");
  return d;
}
const json& fx_json() {
  static const json j = json::parse(std::ifstream(fixture("reference/detectors/rmd.json")));
  return j;
}
std::pair<double, double> tol(const std::string& name) {
  const json& t = fx_json()["tensors"][name]["tolerance"];
  return {t["rtol"].get<double>(), t["atol"].get<double>()};
}
at::Tensor data(const std::string& name) { return tensor_of(reference_data(), name); }

// Definition-exact float64 RMD. `normalise_background` false gives pytorch-ood 0.2's
// background covariance (the scatter itself).
struct Reference {
  at::Tensor mu, precision, bg_mu, bg_cov, bg_precision;
};
Reference reference_fit(const at::Tensor& z_all, const at::Tensor& y_all, bool normalise_background = true) {
  const at::Tensor keep = y_all >= 0;
  const at::Tensor z = z_all.index({keep}).to(at::kDouble);
  const at::Tensor y = y_all.index({keep});
  const std::int64_t n = z.size(0), d = z.size(1), k = y.max().item<std::int64_t>() + 1;
  const at::Tensor eye = at::eye(d, at::kDouble);
  Reference r;
  r.mu = at::zeros({k, d}, at::kDouble);
  at::Tensor scatter = at::zeros({d, d}, at::kDouble);
  for (std::int64_t c = 0; c < k; ++c) {
    const at::Tensor zc = z.index({y == c});
    r.mu[c] = zc.mean(0);
    scatter += at::mm((zc - r.mu[c]).t(), zc - r.mu[c]);
  }
  r.precision = at::linalg_inv(scatter / static_cast<double>(n - 1) + 1e-6 * eye);
  r.bg_mu = z.mean(0);
  const at::Tensor bg_scatter = at::mm((z - r.bg_mu).t(), z - r.bg_mu);
  r.bg_cov = (normalise_background ? bg_scatter / static_cast<double>(n - 1) : bg_scatter) + 1e-6 * eye;
  r.bg_precision = at::linalg_inv(r.bg_cov);
  return r;
}
at::Tensor quad(const at::Tensor& diff, const at::Tensor& p) { return (at::matmul(diff, p) * diff).sum(-1); }
at::Tensor class_distances(const at::Tensor& z, const Reference& r) {
  return quad(z.to(at::kDouble).unsqueeze(1) - r.mu.unsqueeze(0), r.precision);
}
at::Tensor reference_scores(const at::Tensor& z, const Reference& r) {
  const at::Tensor d0 = quad(z.to(at::kDouble) - r.bg_mu, r.bg_precision);
  return std::get<0>((class_distances(z, r) - d0.unsqueeze(1)).min(1));
}

std::shared_ptr<Detector> fitted(const at::Tensor& z, const at::Tensor& y, const std::string& params = "{}") {
  auto det = make_detector("rmd", params);
  fit_on_views(*det, z, at::Tensor(), y);
  return det;
}

TEST(Rmd, MatchesTheDefinitionComputedFromTheFixtureInputs) {
  const at::Tensor y = data("y_fit");
  const Reference ref = reference_fit(data("features_fit_f64"), y);
  // float64 features: definition-exact
  auto det64 = fitted(data("features_fit_f64"), y);
  EXPECT_TRUE(all_close(det64->state().at("background_cov"), ref.bg_cov, 1e-12, 1e-15));
  for (const char* side : {"in", "out"}) {
    const at::Tensor z = data(std::string("features_") + side + "_f64");
    EXPECT_TRUE(all_close(score_views(*det64, z, at::Tensor()), reference_scores(z, ref), 1e-9, 1e-9)) << side;
  }
  // float32 features (the pipeline's): within the fixture's float32 tolerance
  auto det = fitted(data("features_fit"), y);
  const TensorDict s = det->state();
  {
    const auto [rtol, atol] = tol("background_mu");
    EXPECT_TRUE(all_close(s.at("background_mu"), tensor_of(fx(), "background_mu"), rtol, atol));
  }
  // pytorch-ood's background_cov is the scatter + 1e-6 I; ours is normalised like the class one
  const std::int64_t n = y.size(0);
  const at::Tensor eye = at::eye(128, at::kDouble);
  const at::Tensor normalised = (tensor_of(fx(), "background_cov").to(at::kDouble) - 1e-6 * eye) / double(n - 1) + 1e-6 * eye;
  EXPECT_TRUE(all_close(s.at("background_cov"), normalised, 1e-5, 1e-8));
  for (const char* side : {"in", "out"}) {
    const auto [rtol, atol] = tol(std::string("scores_features_") + side);
    const at::Tensor expected = reference_scores(data(std::string("features_") + side + "_f64"), ref);
    EXPECT_TRUE(all_close(score_views(*det, data(std::string("features_") + side), at::Tensor()), expected, rtol, atol))
        << side;
  }
}

TEST(Rmd, DoesNotReproducePytorchOodsUnnormalisedBackground) {
  const at::Tensor y = data("y_fit");
  // The test understands pytorch-ood: with the unnormalised background it gets its scores.
  const Reference artefact = reference_fit(data("features_fit_f64"), y, /*normalise_background=*/false);
  auto det = fitted(data("features_fit"), y);
  for (const char* side : {"in", "out"}) {
    const std::string key = std::string("scores_features_") + side;
    const auto [rtol, atol] = tol(key);
    const at::Tensor z = data(std::string("features_") + side + "_f64");
    EXPECT_TRUE(all_close(reference_scores(z, artefact), tensor_of(fx(), key), rtol, atol)) << side;
    const at::Tensor ours = score_views(*det, data(std::string("features_") + side), at::Tensor());
    EXPECT_GT((ours - tensor_of(fx(), key)).abs().max().item<double>(), 10.0) << side;
  }
  EXPECT_GT((det->state().at("background_cov") - tensor_of(fx(), "background_cov").to(at::kDouble)).abs().max().item<double>(),
            1.0);
}

TEST(Rmd, PerturbsOnlyWhenAskedAndThenAsPytorchOod) {
  auto model = reference_model();
  const at::Tensor x_fit = data("x_fit"), y = data("y_fit");
  // default eps = 0: no preprocessing (pytorch-ood's predict() perturbs with 0.002)
  auto plain = make_detector("rmd");
  EXPECT_FALSE(plain->needs().input_gradients);
  fit_on_model(*plain, *model, x_fit, y);
  const Reference ref = reference_fit(data("features_fit_f64"), y);
  const double eps = fx_json()["eps_inherited"].get<double>();
  auto perturbing = make_detector("rmd", json{{"eps", eps}}.dump());
  EXPECT_TRUE(perturbing->needs().input_gradients);
  fit_on_model(*perturbing, *model, x_fit, y);
  for (const char* side : {"in", "out"}) {
    const at::Tensor x = data(std::string("x_") + side);
    const at::Tensor unperturbed = score_on_model(*plain, *model, x);
    EXPECT_TRUE(all_close(unperturbed, reference_scores(data(std::string("features_") + side + "_f64"), ref), 1e-3, 1e-3))
        << side;
    // eps > 0: the step of pytorch-ood (Mahalanobis' term of the closest class), computed here
    at::Tensor grad;
    {
      at::AutoGradMode enable(true);
      const at::Tensor xr = x.detach().clone().requires_grad_(true);
      const at::Tensor z = model->features(xr).to(at::kDouble);
      const at::Tensor nearest = class_distances(z.detach(), ref).argmin(1);
      const at::Tensor loss = 0.5 * quad(z - ref.mu.index({nearest}), ref.precision).sum();
      grad = torch::autograd::grad({loss}, {xr})[0];
    }
    const at::Tensor fixture_sign = tensor_of(fx(), std::string("grad_sign_") + side).to(at::kFloat);
    EXPECT_LT((grad.slice(0, 0, 4).sign() != fixture_sign).to(at::kDouble).mean().item<double>(), 1e-3) << side;
    const at::Tensor x_hat = (x - eps * grad.sign()).detach();
    at::Tensor z_hat;
    {
      at::NoGradGuard no_grad;
      z_hat = model->features(x_hat);
    }
    const at::Tensor perturbed = score_on_model(*perturbing, *model, x);
    EXPECT_TRUE(all_close(perturbed, reference_scores(z_hat, ref), 1e-4, 1e-3)) << side;
    EXPECT_GT((perturbed - unperturbed).abs().max().item<double>(), 1.0) << side;
    // and with pytorch-ood's unnormalised background the same x_hat gives its predict() scores
    const Reference artefact = reference_fit(data("features_fit_f64"), y, false);
    const std::string key = std::string("scores_predict_") + side;
    const auto [rtol, atol] = tol(key);
    EXPECT_TRUE(all_close(reference_scores(z_hat, artefact), tensor_of(fx(), key), rtol, atol)) << side;
  }
}

TEST(Rmd, KnownAnswerOnOtherDataIgnoringOodLabelsAndBatching) {
  at::Generator gen = at::detail::createCPUGenerator(31);
  const std::int64_t n = 250, d = 5, k = 3;
  at::Tensor y = at::randint(0, k, {n}, gen, at::kLong);
  at::Tensor z = at::mm(at::randn({n, d}, gen, at::kDouble), at::randn({d, d}, gen, at::kDouble)) +
                 2.0 * at::randn({k, d}, gen, at::kDouble).index({y}) - 50.0;
  y.slice(0, 200).fill_(-3);
  z.slice(0, 200).mul_(-20.0);
  const Reference ref = reference_fit(z, y);
  const at::Tensor test = at::randn({40, d}, gen, at::kDouble) * 4.0 - 50.0;
  for (std::int64_t batch : {9, 1000}) {
    auto det = make_detector("rmd");
    fit_on_views(*det, z, at::Tensor(), y, batch);
    EXPECT_TRUE(all_close(det->state().at("background_mu"), ref.bg_mu, 1e-12, 1e-12)) << batch;
    EXPECT_TRUE(all_close(det->state().at("background_precision"), ref.bg_precision, 1e-8, 1e-10)) << batch;
    EXPECT_TRUE(all_close(score_views(*det, test, at::Tensor()), reference_scores(test, ref), 1e-9, 1e-9)) << batch;
  }
}

TEST(Rmd, StateRoundTripGivesBitIdenticalScores) {
  auto det = fitted(data("features_fit"), data("y_fit"));
  auto restored = make_detector("rmd");
  restored->load_state(det->state());
  const at::Tensor f = data("features_in");
  EXPECT_TRUE(at::equal(score_views(*restored, f, at::Tensor()), score_views(*det, f, at::Tensor())));
}

TEST(Rmd, RefusesScoringBeforeFittingBadStatesParametersAndInputs) {
  try {
    score_views(*make_detector("rmd"), data("features_in"), at::Tensor());
    ADD_FAILURE() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("rmd: not fitted"), std::string::npos) << e.what();
  }
  const TensorDict good = fitted(data("features_fit"), data("y_fit"))->state();
  EXPECT_EQ(good.size(), 6u);
  for (const auto& key : good.keys()) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    EXPECT_THROW(make_detector("rmd")->load_state(s), StateError) << key;
  }
  TensorDict wrong = good;
  wrong.set("background_mu", at::zeros({127}, at::kDouble));
  EXPECT_THROW(make_detector("rmd")->load_state(wrong), StateError);
  wrong = good;
  wrong.set("background_precision", at::zeros({128, 128}, at::kDouble));
  EXPECT_THROW(make_detector("rmd")->load_state(wrong), StateError);
  wrong = good;
  wrong.set("extra", at::zeros({1}));
  EXPECT_THROW(make_detector("rmd")->load_state(wrong), StateError);
  EXPECT_THROW(make_detector("rmd", R"({"eps": -1})"), InvalidArgument);
  EXPECT_THROW(make_detector("rmd", R"({"norm_std": [0]})"), InvalidArgument);
  try {
    make_detector("rmd", R"({"eps": 0.01, "norm_std": [0.2, 0.3, 0.4, 0.5]})")->attach(*reference_model());
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/norm_std: 4 values for a model with 3 input channels", 0), 0u)
        << e.what();
  }
  auto det = fitted(data("features_fit"), data("y_fit"));
  EXPECT_THROW(score_views(*det, at::randn({3, 64}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({3, 128, 1}), at::Tensor()), ShapeError);
  auto perturbing = fitted(data("features_fit"), data("y_fit"), R"({"eps": 0.01})");
  EXPECT_THROW(score_views(*perturbing, data("features_in"), at::Tensor()), StateError);  // needs the model
}

}  // namespace
}  // namespace ood::test
