// mahalanobis: parity with pytorch-ood 0.2's Mahalanobis (tests/fixtures/reference/detectors/
// mahalanobis.{pt,json}), closed-form answers on other data, state and errors.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "linear_test_model.hpp"
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

using json = nlohmann::json;

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/detectors/mahalanobis.pt");
  return d;
}
const json& fx_json() {
  static const json j = json::parse(std::ifstream(fixture("reference/detectors/mahalanobis.json")));
  return j;
}
std::pair<double, double> tol(const std::string& name) {
  const json& t = fx_json()["tensors"][name]["tolerance"];
  return {t["rtol"].get<double>(), t["atol"].get<double>()};
}
double run_eps(const std::string& key) {
  for (const auto& r : fx_json()["runs"])
    if (r["key"] == key) return r["constructor"]["eps"].get<double>();
  throw std::runtime_error("no run " + key);
}
at::Tensor data(const std::string& name) { return tensor_of(reference_data(), name); }

// Definition-exact float64 reference: class means, shared covariance / (N - 1) + 1e-6 I,
// its inverse, and 0.5 * min_k squared distances.
struct Reference {
  at::Tensor mu, cov, precision;
};
Reference reference_fit(const at::Tensor& z, const at::Tensor& y) {
  const at::Tensor keep = y >= 0;
  const at::Tensor zz = z.index({keep}).to(at::kDouble);
  const at::Tensor yy = y.index({keep});
  const std::int64_t k = yy.max().item<std::int64_t>() + 1;
  Reference r;
  r.mu = at::zeros({k, zz.size(1)}, at::kDouble);
  at::Tensor scatter = at::zeros({zz.size(1), zz.size(1)}, at::kDouble);
  for (std::int64_t c = 0; c < k; ++c) {
    const at::Tensor zc = zz.index({yy == c});
    r.mu[c] = zc.mean(0);
    const at::Tensor d = zc - r.mu[c];
    scatter += at::mm(d.t(), d);
  }
  r.cov = scatter / static_cast<double>(zz.size(0) - 1) + 1e-6 * at::eye(zz.size(1), at::kDouble);
  r.precision = at::linalg_inv(r.cov);
  return r;
}
at::Tensor reference_distances(const at::Tensor& z, const at::Tensor& mu, const at::Tensor& precision) {
  const at::Tensor d = z.to(at::kDouble).unsqueeze(1) - mu.unsqueeze(0);  // [N, K, D]
  return (at::matmul(d, precision) * d).sum(2);                           // [N, K]
}
at::Tensor reference_scores(const at::Tensor& z, const Reference& r) {
  return 0.5 * std::get<0>(reference_distances(z, r.mu, r.precision).min(1));
}

std::shared_ptr<Detector> fitted_on_reference_features(const std::string& params = "{\"eps\": 0}") {
  auto det = make_detector("mahalanobis", params);
  fit_on_views(*det, data("features_fit"), at::Tensor(), data("y_fit"));
  return det;
}

TEST(Mahalanobis, MatchesPytorchOodOnReferenceFeatures) {
  auto det = fitted_on_reference_features();
  const TensorDict s = det->state();
  for (const char* name : {"mu", "cov"}) {
    const auto [rtol, atol] = tol(name);
    EXPECT_TRUE(all_close(s.at(name), tensor_of(fx(), name), rtol, atol)) << name;
  }
  // The fixture's precision is a float32 inverse of a covariance with condition number ~2.5e4
  // and entries up to 5.6e5: even the exact float64 inverse of the float64 covariance differs
  // from it by up to 2.5 (the json's atol 1e-2 is out of reach). Compare relative to its size.
  const at::Tensor p_fx = tensor_of(fx(), "precision");
  const double scale = p_fx.abs().max().item<double>();
  EXPECT_TRUE(all_close(s.at("precision"), p_fx, tol("precision").first, 1e-5 * scale));
  EXPECT_TRUE(all_close(at::mm(s.at("precision"), s.at("cov")), at::eye(128, at::kDouble), 0, 1e-9));
  for (const char* side : {"in", "out"}) {
    const std::string key = std::string("scores_eps0_") + side;
    const auto [rtol, atol] = tol(key);
    const at::Tensor scores = score_views(*det, data(std::string("features_") + side), at::Tensor());
    EXPECT_TRUE(all_close(scores, tensor_of(fx(), key), rtol, atol)) << side;
    // score = -max_k of pytorch-ood's per-class gaussian terms
    const at::Tensor from_terms = -std::get<0>(tensor_of(fx(), std::string("gaussian_") + side).max(1));
    EXPECT_TRUE(all_close(scores, from_terms, rtol, atol)) << side;
  }
}

TEST(Mahalanobis, MatchesFloat64FieldsOnFloat64Features) {
  auto det = make_detector("mahalanobis", R"({"eps": 0})");
  fit_on_views(*det, data("features_fit_f64"), at::Tensor(), data("y_fit"));
  EXPECT_TRUE(all_close(det->state().at("mu"), tensor_of(fx(), "mu_f64"), 1e-10, 1e-12));
  for (const char* side : {"in", "out"}) {
    const at::Tensor scores = score_views(*det, data(std::string("features_") + side + "_f64"), at::Tensor());
    // ill-conditioned covariance (condition number ~2.5e4): a little above the json's 1e-10
    EXPECT_TRUE(all_close(scores, tensor_of(fx(), std::string("scores_eps0_") + side + "_f64"), 1e-9, 1e-12))
        << side;
  }
}

TEST(Mahalanobis, MatchesPytorchOodThroughTheModelWithAndWithoutPerturbation) {
  auto model = reference_model();
  for (const char* key : {"eps0", "eps"}) {
    auto det = make_detector("mahalanobis", "{\"eps\": " + std::to_string(run_eps(key)) + "}");
    EXPECT_EQ(det->needs().input_gradients, std::string(key) == "eps");
    fit_on_model(*det, *model, data("x_fit"), data("y_fit"));
    EXPECT_TRUE(all_close(det->state().at("mu"), tensor_of(fx(), "mu"), 1e-4, 1e-4));
    for (const char* side : {"in", "out"}) {
      const std::string name = std::string("scores_") + key + "_" + side;
      const auto [rtol, atol] = tol(name);
      EXPECT_TRUE(all_close(score_on_model(*det, *model, data(std::string("x_") + side), 32), tensor_of(fx(), name),
                            rtol, atol))
          << name;
    }
  }
}

TEST(Mahalanobis, KnownAnswerOnOtherDataIgnoringOodLabelsAndBatching) {
  // 4 classes, 6 dimensions, correlated features far from the origin, 10% OOD rows.
  at::Generator gen = at::detail::createCPUGenerator(7);
  const std::int64_t n = 300, d = 6, k = 4;
  at::Tensor y = at::randint(0, k, {n}, gen, at::kLong);
  const at::Tensor mix = at::randn({d, d}, gen, at::kDouble);
  at::Tensor z = at::mm(at::randn({n, d}, gen, at::kDouble), mix) + 3.0 * at::randn({k, d}, gen, at::kDouble).index({y}) + 100.0;
  y.slice(0, 0, 30).fill_(-1);
  z.slice(0, 0, 30).mul_(1000.0);  // OOD rows: ignored, however far away
  const Reference ref = reference_fit(z, y);
  const at::Tensor test = at::randn({50, d}, gen, at::kDouble) * 3.0 + 100.0;
  for (std::int64_t batch : {7, 1000}) {
    auto det = make_detector("mahalanobis", R"({"eps": 0})");
    fit_on_views(*det, z, at::Tensor(), y, batch);
    EXPECT_TRUE(all_close(det->state().at("mu"), ref.mu, 1e-12, 1e-12)) << batch;
    EXPECT_TRUE(all_close(det->state().at("cov"), ref.cov, 1e-10, 1e-12)) << batch;
    EXPECT_TRUE(all_close(det->state().at("precision"), ref.precision, 1e-8, 1e-12)) << batch;
    EXPECT_TRUE(all_close(score_views(*det, test, at::Tensor()), reference_scores(test, ref), 1e-9, 1e-9)) << batch;
  }
}

TEST(Mahalanobis, ManyClassesAreScoredInChunks) {
  // 150 classes x 300 dimensions x 200 queries: the distances are computed in several chunks.
  at::Generator gen = at::detail::createCPUGenerator(8);
  const std::int64_t n = 3000, d = 300, k = 150;
  const at::Tensor y = at::arange(n, at::kLong) % k;
  const at::Tensor z = at::randn({n, d}, gen, at::kDouble) + 2.0 * at::randn({k, d}, gen, at::kDouble).index({y});
  const at::Tensor test = at::randn({200, d}, gen, at::kDouble) * 2.0;
  auto det = make_detector("mahalanobis", R"({"eps": 0})");
  fit_on_views(*det, z, at::Tensor(), y, 500);
  EXPECT_TRUE(all_close(score_views(*det, test, at::Tensor()), reference_scores(test, reference_fit(z, y)), 1e-9, 1e-9));
}

TEST(Mahalanobis, PerturbationKnownAnswerOnALinearModel) {
  // features = A x: grad_x 0.5 d_k*(A x) = A^T P (A x - mu_k*), so x_hat has a closed form.
  LinearTestModel model(2, 3, 5, 3, 11);
  at::Generator gen = at::detail::createCPUGenerator(12);
  const at::Tensor x_fit = at::randn({120, 2, 3, 3}, gen, at::kDouble);
  const at::Tensor y_fit = at::arange(120, at::kLong) % 3;
  const at::Tensor x = at::randn({20, 2, 3, 3}, gen, at::kDouble) * 2.0;
  auto det = make_detector("mahalanobis", R"({"eps": 0.05, "norm_std": [0.5, 2.0]})");
  fit_on_model(*det, model, x_fit, y_fit, 50);
  const Reference ref = reference_fit(model.features(x_fit), y_fit);
  const at::Tensor z = model.features(x);
  const at::Tensor nearest = reference_distances(z, ref.mu, ref.precision).argmin(1);
  const at::Tensor grad = at::mm(at::mm(z - ref.mu.index({nearest}), ref.precision), model.a()).view_as(x);
  const at::Tensor std_ = at::tensor({0.5, 2.0}, at::kDouble).view({1, 2, 1, 1});
  const at::Tensor x_hat = x - 0.05 * grad.sign() / std_;
  const at::Tensor expected = reference_scores(model.features(x_hat), ref);
  const at::Tensor actual = score_on_model(*det, model, x, 8);
  EXPECT_TRUE(all_close(actual, expected, 1e-9, 1e-9));
  // the step lowers the distance to the closest class, so the scores drop
  EXPECT_TRUE((actual < reference_scores(z, ref)).all().item<bool>());
}

TEST(Mahalanobis, StateRoundTripGivesBitIdenticalScores) {
  auto det = fitted_on_reference_features(R"({"eps": 0})");
  auto restored = make_detector("mahalanobis", R"({"eps": 0})");
  restored->load_state(det->state());
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor f = data("features_out");
  EXPECT_TRUE(at::equal(score_views(*restored, f, at::Tensor()), score_views(*det, f, at::Tensor())));
  // with input perturbation, through the model (state saved by one instance, loaded by another)
  auto perturbing = make_detector("mahalanobis", R"({"eps": 0.002})");
  perturbing->load_state(det->state());
  auto perturbing_restored = make_detector("mahalanobis", R"({"eps": 0.002})");
  perturbing_restored->attach(*reference_model());
  perturbing_restored->load_state(perturbing->state());
  auto model = reference_model();
  const at::Tensor x = data("x_out").slice(0, 0, 8);
  EXPECT_TRUE(at::equal(score_on_model(*perturbing_restored, *model, x), score_on_model(*perturbing, *model, x)));
}

TEST(Mahalanobis, RefusesScoringBeforeFittingAndBadStates) {
  auto det = make_detector("mahalanobis");
  EXPECT_FALSE(det->is_fitted());
  try {
    score_views(*det, data("features_in"), at::Tensor());
    ADD_FAILURE() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("mahalanobis: not fitted"), std::string::npos) << e.what();
  }
  const TensorDict good = fitted_on_reference_features()->state();
  auto without = [&](const std::string& key) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    return s;
  };
  EXPECT_THROW(make_detector("mahalanobis")->load_state(without("precision")), StateError);
  EXPECT_THROW(make_detector("mahalanobis")->load_state(TensorDict()), StateError);
  TensorDict extra = good;
  extra.set("sigma", at::ones({1}));
  EXPECT_THROW(make_detector("mahalanobis")->load_state(extra), StateError);
  TensorDict wrong = good;
  wrong.set("cov", at::eye(127, at::kDouble));
  EXPECT_THROW(make_detector("mahalanobis")->load_state(wrong), StateError);
  wrong = good;
  wrong.set("mu", at::zeros({10}, at::kDouble));
  EXPECT_THROW(make_detector("mahalanobis")->load_state(wrong), StateError);
  wrong = good;
  wrong.set("precision", -at::eye(128, at::kDouble));  // not positive definite
  EXPECT_THROW(make_detector("mahalanobis")->load_state(wrong), StateError);
  // a state fitted on 6-dimensional features does not fit the reference model's 128
  auto small = make_detector("mahalanobis", R"({"eps": 0})");
  fit_on_views(*small, at::randn({40, 6}), at::Tensor(), at::arange(40, at::kLong) % 2);
  auto attached = make_detector("mahalanobis");
  attached->attach(*reference_model());
  EXPECT_THROW(attached->load_state(small->state()), StateError);
}

TEST(Mahalanobis, RefusesBadParametersAndInputs) {
  EXPECT_THROW(make_detector("mahalanobis", R"({"eps": -0.1})"), InvalidArgument);
  EXPECT_THROW(make_detector("mahalanobis", R"({"norm_std": [0.2, 0.0, 0.3]})"), InvalidArgument);
  EXPECT_THROW(make_detector("mahalanobis", R"({"norm_std": []})"), InvalidArgument);
  EXPECT_THROW(make_detector("mahalanobis", R"({"epsilon": 0.1})"), InvalidArgument);
  try {
    make_detector("mahalanobis", R"({"norm_std": [0.2, 0.3]})")->attach(*reference_model());
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/norm_std: 2 values for a model with 3 input channels", 0), 0u)
        << e.what();
  }
  auto det = fitted_on_reference_features();
  EXPECT_THROW(score_views(*det, at::randn({4, 127}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({128}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::ones({4, 128}, at::kLong), at::Tensor()), ShapeError);
  auto fresh = make_detector("mahalanobis", R"({"eps": 0})");
  EXPECT_THROW(fit_on_views(*fresh, at::randn({4, 3, 2}), at::Tensor(), at::zeros({4}, at::kLong)), ShapeError);
  // only OOD samples, or a class without samples: errors at finish_fit
  auto only_ood = make_detector("mahalanobis", R"({"eps": 0})");
  EXPECT_THROW(fit_on_views(*only_ood, at::randn({4, 3}), at::Tensor(), at::full({4}, -1, at::kLong)), StateError);
  auto gap = make_detector("mahalanobis", R"({"eps": 0})");
  EXPECT_THROW(fit_on_views(*gap, at::randn({4, 3}), at::Tensor(), at::tensor({0, 0, 2, 2}, at::kLong)), StateError);
  // eps > 0 without a model
  auto perturbing = fitted_on_reference_features(R"({"eps": 0.002})");
  EXPECT_THROW(score_views(*perturbing, data("features_in"), at::Tensor()), StateError);
}

}  // namespace
}  // namespace ood::test
