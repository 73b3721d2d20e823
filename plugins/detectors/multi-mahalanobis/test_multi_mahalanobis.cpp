// multi-mahalanobis: parity with pytorch-ood 0.2's MultiMahalanobis (tests/fixtures/reference/
// detectors/multi_mahalanobis.{pt,json}), closed-form answers, state and errors.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "../mahalanobis/linear_test_model.hpp"
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

using json = nlohmann::json;

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/detectors/multi_mahalanobis.pt");
  return d;
}
const json& fx_json() {
  static const json j = json::parse(std::ifstream(fixture("reference/detectors/multi_mahalanobis.json")));
  return j;
}
std::pair<double, double> tol(const std::string& name) {
  const json& t = fx_json()["tensors"][name]["tolerance"];
  return {t["rtol"].get<double>(), t["atol"].get<double>()};
}
at::Tensor data(const std::string& name) { return tensor_of(reference_data(), name); }

// The fixture's four stages by ood's layer names: its last one, Sequential(block3, bn1,
// relu), is wide-resnet's before_pool.
const std::vector<std::string> kLayers = {"conv1", "block1", "block2", "before_pool"};
std::vector<double> fixture_alpha() { return fx_json()["constructor"]["alpha"].get<std::vector<double>>(); }
std::string params_for(const std::vector<std::string>& layers, const std::vector<double>& alpha, double eps = 0) {
  return json{{"layers", layers}, {"alpha", alpha}, {"eps", eps}}.dump();
}

std::shared_ptr<Detector> fitted_on_reference(const std::vector<std::string>& layers, const std::vector<double>& alpha) {
  auto det = make_detector("multi-mahalanobis", params_for(layers, alpha));
  fit_on_model(*det, *reference_model(), data("x_fit"), data("y_fit"), 32);
  return det;
}
const std::shared_ptr<Detector>& fixture_detector() {
  static const std::shared_ptr<Detector> det = fitted_on_reference(kLayers, fixture_alpha());
  return det;
}

// Definition-exact float64 reference for one layer's [N, D] features.
struct Gaussian {
  at::Tensor mu, precision;
};
Gaussian reference_fit(const at::Tensor& z_all, const at::Tensor& y_all) {
  const at::Tensor keep = y_all >= 0;
  const at::Tensor z = z_all.index({keep}).to(at::kDouble);
  const at::Tensor y = y_all.index({keep});
  const std::int64_t k = y.max().item<std::int64_t>() + 1, d = z.size(1);
  Gaussian g;
  g.mu = at::zeros({k, d}, at::kDouble);
  at::Tensor scatter = at::zeros({d, d}, at::kDouble);
  for (std::int64_t c = 0; c < k; ++c) {
    const at::Tensor zc = z.index({y == c});
    g.mu[c] = zc.mean(0);
    scatter += at::mm((zc - g.mu[c]).t(), zc - g.mu[c]);
  }
  g.precision = at::linalg_inv(scatter / static_cast<double>(z.size(0) - 1) + 1e-6 * at::eye(d, at::kDouble));
  return g;
}
at::Tensor distances(const at::Tensor& z, const Gaussian& g) {
  const at::Tensor diff = z.to(at::kDouble).unsqueeze(1) - g.mu.unsqueeze(0);
  return (at::matmul(diff, g.precision) * diff).sum(2);
}
at::Tensor pooled(const at::Tensor& t) { return t.dim() == 2 ? t : t.flatten(2).mean(2); }

TEST(MultiMahalanobis, MatchesPytorchOodOnTheReferenceModel) {
  auto det = fixture_detector();
  EXPECT_EQ(det->needs().layers, kLayers);
  EXPECT_FALSE(det->needs().input_gradients);
  const TensorDict s = det->state();
  for (std::size_t l = 0; l < kLayers.size(); ++l) {
    const std::string sfx = std::to_string(l);
    // mu comes through the network here (float32 model outputs)
    EXPECT_TRUE(all_close(s.at("mu_" + sfx), tensor_of(fx(), "mu_" + sfx), std::max(tol("mu_" + sfx).first, 1e-4),
                          std::max(tol("mu_" + sfx).second, 1e-5)))
        << l;
    // The fixture's precisions are float32 inverses of ill-conditioned covariances (entries up
    // to ~1e4..1e5): compare relative to their size (see test_mahalanobis.cpp), and check that
    // ours inverts our covariance.
    const at::Tensor p_fx = tensor_of(fx(), "precision_" + sfx);
    const double scale = p_fx.abs().max().item<double>();
    const at::Tensor p = s.at("precision_" + sfx);
    EXPECT_TRUE(all_close(p, p_fx, tol("precision_" + sfx).first, 3e-4 * scale))
        << l << ": max |diff| / max |P| = " << ((p - p_fx).abs().max().item<double>() / scale);
    EXPECT_TRUE(all_close(at::mm(p, s.at("cov_" + sfx)), at::eye(p.size(0), at::kDouble), 0, 1e-9)) << l;
  }
  auto model = reference_model();
  for (const char* side : {"in", "out"}) {
    const at::Tensor x = data(std::string("x_") + side);
    const std::string key = std::string("scores_") + side;
    const auto [rtol, atol] = tol(key);
    EXPECT_TRUE(all_close(score_on_model(*det, *model, x, 32), tensor_of(fx(), key), rtol, atol)) << side;
    // the per-layer features the fixture lists (first 16 samples, widths 16, 32, 64, 128)
    at::Tensor feats;
    {
      at::NoGradGuard no_grad;
      const TensorDict out = model->intermediate(x.slice(0, 0, 16), kLayers);
      std::vector<at::Tensor> parts;
      for (const auto& l : kLayers) parts.push_back(pooled(out.at(l)));
      feats = at::cat(parts, 1);
    }
    const auto [frtol, fatol] = tol(std::string("layer_features_") + side);
    EXPECT_TRUE(all_close(feats, tensor_of(fx(), std::string("layer_features_") + side), frtol, fatol)) << side;
  }
}

TEST(MultiMahalanobis, SingleLayerDetectorsGiveTheFixturesPerLayerScores) {
  auto model = reference_model();
  for (std::size_t l = 0; l < kLayers.size(); ++l) {
    auto det = fitted_on_reference({kLayers[l]}, {1.0});
    // the same fit as the layer's part of the four-layer detector
    EXPECT_TRUE(at::equal(det->state().at("precision_0"), fixture_detector()->state().at("precision_" + std::to_string(l))));
    for (const char* side : {"in", "out"}) {
      const std::string key = std::string("layer_scores_") + side;
      const auto [rtol, atol] = tol(key);
      const at::Tensor expected = tensor_of(fx(), key).select(1, static_cast<std::int64_t>(l));
      EXPECT_TRUE(all_close(score_on_model(*det, *model, data(std::string("x_") + side)), expected, rtol, atol))
          << kLayers[l] << " " << side;
    }
  }
}

// Offline views carrying only layer outputs.
void fit_on_layers(Detector& det, const std::vector<std::string>& names, const std::vector<at::Tensor>& outputs,
                   const at::Tensor& labels, std::int64_t batch) {
  for (std::int64_t start = 0; start < labels.size(0); start += batch) {
    const std::int64_t end = std::min(labels.size(0), start + batch);
    Views v;
    for (std::size_t i = 0; i < names.size(); ++i) v.set_layer(names[i], outputs[i].slice(0, start, end));
    det.fit_batch(v, labels.slice(0, start, end));
  }
  det.finish_fit();
}
at::Tensor score_layers(Detector& det, const std::vector<std::string>& names, const std::vector<at::Tensor>& outputs) {
  Views v;
  for (std::size_t i = 0; i < names.size(); ++i) v.set_layer(names[i], outputs[i]);
  return det.score(v);
}

TEST(MultiMahalanobis, KnownAnswerOnOtherLayersSizesAndClasses) {
  at::Generator gen = at::detail::createCPUGenerator(41);
  const std::int64_t n = 200, k = 5;
  at::Tensor y = at::randint(0, k, {n}, gen, at::kLong);
  y.slice(0, 0, 20).fill_(-1);
  const std::vector<std::string> names = {"deep", "flat", "map"};
  const std::vector<at::Tensor> fit = {
      at::randn({n, 3, 4, 4}, gen, at::kDouble) + at::randn({k + 1, 3, 1, 1}, gen, at::kDouble).index({y + 1}),
      at::randn({n, 7}, gen, at::kDouble) * 2.0 + 5.0,  // a 2-D layer is used as it is
      at::randn({n, 2, 5, 3}, gen, at::kFloat)};
  const std::vector<at::Tensor> test = {at::randn({30, 3, 4, 4}, gen, at::kDouble), at::randn({30, 7}, gen, at::kDouble),
                                        at::randn({30, 2, 5, 3}, gen, at::kFloat)};
  const std::vector<double> alpha = {0.25, 3.0, -1.0};
  at::Tensor expected = at::zeros({30}, at::kDouble);
  for (std::size_t l = 0; l < names.size(); ++l) {
    const Gaussian g = reference_fit(pooled(fit[l]), y);
    expected += alpha[l] * 0.5 * std::get<0>(distances(pooled(test[l]), g).min(1));
  }
  for (std::int64_t batch : {13, 1000}) {
    auto det = make_detector("multi-mahalanobis", params_for(names, alpha));
    fit_on_layers(*det, names, fit, y, batch);
    EXPECT_TRUE(all_close(score_layers(*det, names, test), expected, 1e-9, 1e-9)) << batch;
  }
  // alpha defaults to 1 per layer
  auto uniform = make_detector("multi-mahalanobis", json{{"layers", names}}.dump());
  fit_on_layers(*uniform, names, fit, y, 50);
  auto weighted = make_detector("multi-mahalanobis", params_for(names, {1.0, 1.0, 1.0}));
  fit_on_layers(*weighted, names, fit, y, 50);
  EXPECT_TRUE(at::equal(score_layers(*uniform, names, test), score_layers(*weighted, names, test)));
}

TEST(MultiMahalanobis, PerLayerPerturbationKnownAnswerOnALinearModel) {
  // Layer "input" (per-channel means m = mean_hw x): grad_x 0.5 d_k*(m) = P (m - mu_k*) / (H W)
  // on every pixel of a channel; layer "features" (A x): A^T P (A x - mu_k*). Each layer is
  // scored on its own perturbed input.
  LinearTestModel model(2, 3, 4, 3, 51);
  at::Generator gen = at::detail::createCPUGenerator(52);
  const at::Tensor x_fit = at::randn({150, 2, 3, 3}, gen, at::kDouble) +
                           at::randn({3, 2, 1, 1}, gen, at::kDouble).index({at::arange(150, at::kLong) % 3});
  const at::Tensor y_fit = at::arange(150, at::kLong) % 3;
  const at::Tensor x = at::randn({16, 2, 3, 3}, gen, at::kDouble) * 1.5;
  const std::vector<double> norm_std = {0.5, 2.0};
  const at::Tensor std_ = at::tensor(norm_std, at::kDouble).view({1, 2, 1, 1});
  auto det = make_detector("multi-mahalanobis",
                           json{{"layers", {"input", "features"}}, {"alpha", {2.0, 0.5}}, {"eps", 0.04}, {"norm_std", norm_std}}.dump());
  EXPECT_TRUE(det->needs().input_gradients);
  fit_on_model(*det, model, x_fit, y_fit, 40);

  const Gaussian g_in = reference_fit(pooled(x_fit), y_fit);
  const at::Tensor m = pooled(x);
  const at::Tensor k_in = distances(m, g_in).argmin(1);
  const at::Tensor grad_in = (at::mm(m - g_in.mu.index({k_in}), g_in.precision) / 9.0).view({16, 2, 1, 1}).expand_as(x);
  const at::Tensor x_in = x - 0.04 * grad_in.sign() / std_;
  const at::Tensor s_in = 0.5 * std::get<0>(distances(pooled(x_in), g_in).min(1));

  const Gaussian g_f = reference_fit(model.features(x_fit), y_fit);
  const at::Tensor z = model.features(x);
  const at::Tensor k_f = distances(z, g_f).argmin(1);
  const at::Tensor grad_f = at::mm(at::mm(z - g_f.mu.index({k_f}), g_f.precision), model.a()).view_as(x);
  const at::Tensor x_f = x - 0.04 * grad_f.sign() / std_;
  const at::Tensor s_f = 0.5 * std::get<0>(distances(model.features(x_f), g_f).min(1));

  EXPECT_TRUE(all_close(score_on_model(*det, model, x, 5), 2.0 * s_in + 0.5 * s_f, 1e-9, 1e-9));
}

TEST(MultiMahalanobis, StateRoundTripGivesBitIdenticalScores) {
  auto det = fixture_detector();
  auto restored = make_detector("multi-mahalanobis", params_for(kLayers, fixture_alpha()));
  restored->attach(*reference_model());
  restored->load_state(det->state());
  const at::Tensor x = data("x_out").slice(0, 0, 16);
  EXPECT_TRUE(at::equal(score_on_model(*restored, *reference_model(), x), score_on_model(*det, *reference_model(), x)));
}

TEST(MultiMahalanobis, RefusesBadParameters) {
  auto message = [](const std::string& params) {
    try {
      make_detector("multi-mahalanobis", params);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"layers": ["conv1", "block1"], "alpha": [1.0]})").find("/test/params/alpha"), std::string::npos);
  EXPECT_NE(message(R"({"layers": ["conv1", "block1"], "alpha": [1.0]})").find("1 weights for 2 layers"),
            std::string::npos);
  EXPECT_NE(message(R"({"layers": ["conv1", "conv1"]})").find("/test/params/layers/1"), std::string::npos);
  EXPECT_NE(message(R"({"layers": []})"), "no error");
  EXPECT_NE(message(R"({})"), "no error");
  EXPECT_NE(message(R"({"layers": ["conv1"], "eps": -1})"), "no error");
  EXPECT_NE(message(R"({"layers": ["conv1"], "norm_std": [1, 0, 1]})"), "no error");
  // unknown layer names: at attach, with the pointer of the entry and the model's layers
  auto det = make_detector("multi-mahalanobis", R"({"layers": ["block1", "block4"]})");
  try {
    det->attach(*reference_model());
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/test/params/layers/1: the model has no layer 'block4'", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("before_pool"), std::string::npos) << e.what();
  }
}

TEST(MultiMahalanobis, RefusesScoringBeforeFittingBadStatesAndInputs) {
  const std::vector<std::string> names = {"a", "b"};
  auto det = make_detector("multi-mahalanobis", json{{"layers", names}}.dump());
  const std::vector<at::Tensor> test = {at::randn({4, 3, 2, 2}), at::randn({4, 5})};
  try {
    score_layers(*det, names, test);
    ADD_FAILURE() << "no error";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("multi-mahalanobis: not fitted"), std::string::npos) << e.what();
  }
  fit_on_layers(*det, names, {at::randn({40, 3, 2, 2}), at::randn({40, 5})}, at::arange(40, at::kLong) % 4, 16);
  const TensorDict good = det->state();
  EXPECT_EQ(good.size(), 6u);
  for (const auto& key : good.keys()) {
    TensorDict s;
    for (const auto& [k, v] : good)
      if (k != key) s.set(k, v);
    EXPECT_THROW(make_detector("multi-mahalanobis", json{{"layers", names}}.dump())->load_state(s), StateError) << key;
  }
  TensorDict extra = good;
  extra.set("mu_2", at::zeros({4, 5}, at::kDouble));  // a third layer that the parameters do not name
  EXPECT_THROW(make_detector("multi-mahalanobis", json{{"layers", names}}.dump())->load_state(extra), StateError);
  TensorDict wrong = good;
  wrong.set("cov_1", at::eye(4, at::kDouble));
  EXPECT_THROW(make_detector("multi-mahalanobis", json{{"layers", names}}.dump())->load_state(wrong), StateError);
  wrong = good;
  wrong.set("mu_1", at::zeros({3, 5}, at::kDouble));  // other number of classes than layer 0
  EXPECT_THROW(make_detector("multi-mahalanobis", json{{"layers", names}}.dump())->load_state(wrong), StateError);
  // wrong channel counts and shapes
  EXPECT_THROW(score_layers(*det, names, {at::randn({4, 4, 2, 2}), at::randn({4, 5})}), ShapeError);
  EXPECT_THROW(score_layers(*det, names, {at::randn({4}), at::randn({4, 5})}), ShapeError);
  EXPECT_THROW(score_layers(*det, names, {at::ones({4, 3, 2, 2}, at::kLong), at::randn({4, 5})}), ShapeError);
}

}  // namespace
}  // namespace ood::test
