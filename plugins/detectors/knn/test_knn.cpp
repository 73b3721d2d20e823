// knn: parity with pytorch-ood's KNN (k = 1, raw features) and the paper's definition
// (k-th neighbour of L2-normalised features), tests/fixtures/reference/detectors/knn.*.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/tensor_dict.hpp"
#include "ood/views.hpp"

#include <limits>

namespace ood::test {
namespace {

const auto& fixture_knn() {
  static const auto d = load_tensor_dict_file("reference/detectors/knn.pt");
  return d;
}

at::Tensor rd(const std::string& key) { return tensor_of(reference_data(), key); }

// Brute force in float64: distance of each query to its k-th nearest fit row.
at::Tensor brute_kth(at::Tensor fit, at::Tensor queries, std::int64_t k, bool normalize) {
  fit = fit.to(at::kDouble);
  queries = queries.to(at::kDouble);
  if (normalize) {
    fit = fit / fit.norm(2, 1, true).clamp_min(1e-12);
    queries = queries / queries.norm(2, 1, true).clamp_min(1e-12);
  }
  std::vector<at::Tensor> out;
  for (std::int64_t s = 0; s < queries.size(0); s += 64) {
    const at::Tensor q = queries.slice(0, s, std::min(queries.size(0), s + 64));
    const at::Tensor d = (q.unsqueeze(1) - fit.unsqueeze(0)).pow(2).sum(2).sqrt();
    out.push_back(std::get<0>(at::kthvalue(d, k, 1)));
  }
  return at::cat(out);
}

std::shared_ptr<Detector> fitted(const std::string& params, const at::Tensor& features, const at::Tensor& labels) {
  auto det = make_detector("knn", params);
  fit_on_views(*det, features, at::Tensor(), labels);
  return det;
}

TEST(Knn, KOneRawFeaturesMatchesPytorchOod) {
  auto det = fitted(R"({"k": 1, "normalize": false})", rd("features_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), at::Tensor());
    EXPECT_EQ(s.dim(), 1);
    EXPECT_EQ(s.scalar_type(), at::kFloat);
    EXPECT_TRUE(all_close(s, tensor_of(fixture_knn(), std::string("scores_") + side).reshape({-1}), 1e-4, 1e-5))
        << side;
    EXPECT_TRUE(all_close(s, tensor_of(fixture_knn(), std::string("scores_") + side + "_f64").reshape({-1}), 1e-4,
                          1e-5))
        << side;
  }
}

TEST(Knn, KOneRawFeaturesThroughTheModelMatchesPytorchOod) {
  auto det = make_detector("knn", R"({"k": 1, "normalize": false})");
  auto model = reference_model();
  fit_on_model(*det, *model, rd("x_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_on_model(*det, *model, rd(std::string("x_") + side));
    EXPECT_TRUE(all_close(s, tensor_of(fixture_knn(), std::string("scores_") + side).reshape({-1}), 1e-4, 1e-4))
        << side;
  }
}

TEST(Knn, DefaultIsThePaperNotPytorchOod) {
  // k = 50 on L2-normalised features (Sun et al. 2022), against a float64 brute force.
  auto det = fitted("{}", rd("features_fit"), rd("y_fit"));
  for (const char* side : {"in", "out"}) {
    const at::Tensor s = score_views(*det, rd(std::string("features_") + side), at::Tensor());
    const at::Tensor expected = brute_kth(rd("features_fit_f64"), rd(std::string("features_") + side + "_f64"), 50, true);
    EXPECT_TRUE(all_close(s, expected, 1e-5, 1e-6)) << side;
    // pytorch-ood's artefact (nearest neighbour of raw features) is not what the default gives.
    EXPECT_FALSE(all_close(s, tensor_of(fixture_knn(), std::string("scores_") + side).reshape({-1}), 1e-2, 1e-2))
        << side;
  }
  // Normalisation alone and k alone each change the result.
  auto raw50 = fitted(R"({"k": 50, "normalize": false})", rd("features_fit"), rd("y_fit"));
  EXPECT_TRUE(all_close(score_views(*raw50, rd("features_in"), at::Tensor()),
                        brute_kth(rd("features_fit_f64"), rd("features_in_f64"), 50, false), 1e-5, 1e-6));
  auto norm1 = fitted(R"({"k": 1})", rd("features_fit"), rd("y_fit"));
  EXPECT_TRUE(all_close(score_views(*norm1, rd("features_out"), at::Tensor()),
                        brute_kth(rd("features_fit_f64"), rd("features_out_f64"), 1, true), 1e-5, 1e-6));
}

TEST(Knn, KnownAnswerOnALine) {
  // Fit points 0..9 on a line; query 4.2: distances 0.2, 0.8, 1.2, 1.8, ...
  const at::Tensor fit = at::arange(10, at::kFloat).unsqueeze(1);
  const at::Tensor labels = at::zeros({10}, at::kLong);
  const at::Tensor q = at::tensor(std::vector<float>{4.2f, -3.0f, 20.0f}).unsqueeze(1);
  auto k3 = fitted(R"({"k": 3, "normalize": false})", fit, labels);
  EXPECT_TRUE(all_close(score_views(*k3, q, at::Tensor()), at::tensor(std::vector<float>{1.2f, 5.0f, 13.0f}), 1e-6,
                        1e-6));
  auto k10 = fitted(R"({"k": 10, "normalize": false})", fit, labels);
  EXPECT_TRUE(all_close(score_views(*k10, q, at::Tensor()), at::tensor(std::vector<float>{4.8f, 12.0f, 20.0f}),
                        1e-6, 1e-6));
}

TEST(Knn, OodLabelledFitSamplesAreIgnored) {
  const at::Tensor f = rd("features_fit");
  auto clean = fitted(R"({"k": 5})", f, rd("y_fit"));
  // The same data plus far-away OOD-labelled rows (also near the queries): no change.
  const at::Tensor extra = rd("features_out").slice(0, 0, 20);
  auto mixed = fitted(R"({"k": 5})", at::cat({f, extra}),
                      at::cat({rd("y_fit"), at::full({20}, -1, at::kLong)}));
  const at::Tensor q = rd("features_out");
  EXPECT_TRUE(all_close(score_views(*mixed, q, at::Tensor()), score_views(*clean, q, at::Tensor()), 0, 0));
  EXPECT_EQ(mixed->state().at("features_centered").size(0), 160);
}

TEST(Knn, ManyStoredFeaturesAcrossChunksAndOtherSizes) {
  // More stored rows than one chunk (65536), another feature size, several query blocks.
  at::manual_seed(7);
  const at::Tensor fit = at::randn({70000, 5});
  const at::Tensor q = at::randn({40, 5}) * 1.5;
  auto det = fitted(R"({"k": 7})", fit, at::zeros({70000}, at::kLong));
  EXPECT_TRUE(all_close(score_views(*det, q, at::Tensor()), brute_kth(fit, q, 7, true), 1e-5, 1e-6));
  auto raw = fitted(R"({"k": 1, "normalize": false})", fit, at::zeros({70000}, at::kLong));
  EXPECT_TRUE(all_close(score_views(*raw, q, at::Tensor()), brute_kth(fit, q, 1, false), 1e-5, 1e-6));
}

TEST(Knn, FarFromTheOriginWithoutCancellation) {
  // Features with a large common offset: the expanded form ||q||^2 + ||s||^2 - 2 q.s would
  // lose every digit in float32; the recomputed distances are exact.
  at::manual_seed(3);
  const at::Tensor fit = at::randn({200, 8}) * 0.01 + 1000.0;
  const at::Tensor q = at::randn({20, 8}) * 0.01 + 1000.0;
  auto det = fitted(R"({"k": 3, "normalize": false})", fit, at::zeros({200}, at::kLong));
  EXPECT_TRUE(all_close(score_views(*det, q, at::Tensor()), brute_kth(fit, q, 3, false), 1e-3, 1e-6));
}

TEST(Knn, KLargerThanTheFitSetIsAnError) {
  auto det = make_detector("knn", R"({"k": 50})");
  try {
    fit_on_views(*det, rd("features_fit").slice(0, 0, 30), at::Tensor(), rd("y_fit").slice(0, 0, 30));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("/test/params/k"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("30"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_detector("knn", R"({"k": 0})"), InvalidArgument);
  EXPECT_THROW(make_detector("knn", R"({"k": 2.5})"), InvalidArgument);
  EXPECT_THROW(make_detector("knn", R"({"normalize": 1})"), InvalidArgument);
  EXPECT_THROW(make_detector("knn", R"({"n_neighbors": 3})"), InvalidArgument);
}

TEST(Knn, StateRoundTripIsBitIdentical) {
  auto det = fitted(R"({"k": 10})", rd("features_fit"), rd("y_fit"));
  const TensorDict state = det->state();
  ASSERT_TRUE(state.contains("features_centered"));
  EXPECT_EQ(state.at("features_centered").size(0), 160);
  // The stored features are the normalised fit features minus their mean.
  const at::Tensor f = rd("features_fit").to(at::kDouble);
  const at::Tensor normed = f / f.norm(2, 1, true);
  EXPECT_TRUE(all_close(state.at("center"), normed.mean(0), 1e-6, 1e-7));
  EXPECT_TRUE(all_close(state.at("features_centered"), normed - normed.mean(0), 1e-5, 1e-6));
  auto restored = make_detector("knn", R"({"k": 10})");
  EXPECT_FALSE(restored->is_fitted());
  restored->load_state(state);
  EXPECT_TRUE(restored->is_fitted());
  const at::Tensor q = rd("features_out");
  EXPECT_TRUE(at::equal(score_views(*restored, q, at::Tensor()), score_views(*det, q, at::Tensor())));
}

TEST(Knn, ScoringBeforeFittingAndBadStates) {
  auto det = make_detector("knn");
  try {
    score_views(*det, rd("features_in"), at::Tensor());
    FAIL() << "no error";
  } catch (const StateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("knn: not fitted", 0), 0u) << e.what();
  }
  auto state_of = [](at::Tensor features, at::Tensor center) {
    TensorDict s;
    if (features.defined()) s.set("features_centered", features);
    if (center.defined()) s.set("center", center);
    return s;
  };
  EXPECT_THROW(det->load_state(TensorDict()), StateError);
  EXPECT_THROW(det->load_state(state_of(at::randn({60, 128}), at::Tensor())), StateError);
  EXPECT_THROW(det->load_state(state_of(at::Tensor(), at::zeros({128}, at::kDouble))), StateError);
  TensorDict unknown = state_of(at::randn({60, 128}), at::zeros({128}, at::kDouble));
  unknown.set("extra", at::zeros({1}));
  EXPECT_THROW(det->load_state(unknown), StateError);
  EXPECT_THROW(det->load_state(state_of(at::randn({60}), at::zeros({128}, at::kDouble))), StateError);
  EXPECT_THROW(det->load_state(state_of(at::randn({60, 128}), at::zeros({127}, at::kDouble))), StateError);
  // k = 50 needs 50 stored features at least.
  EXPECT_THROW(det->load_state(state_of(at::randn({10, 128}), at::zeros({128}, at::kDouble))), StateError);
  EXPECT_THROW(det->load_state(state_of(at::ones({60, 128}, at::kLong), at::zeros({128}, at::kDouble))), StateError);
  EXPECT_NO_THROW(det->load_state(state_of(at::randn({60, 128}), at::zeros({128}, at::kDouble))));
  // Attached to the reference model (128 features), another feature size is refused.
  auto attached = make_detector("knn");
  attached->attach(*reference_model());
  EXPECT_THROW(attached->load_state(state_of(at::randn({60, 64}), at::zeros({64}, at::kDouble))), StateError);
}

TEST(Knn, WrongInputShapes) {
  auto det = fitted(R"({"k": 5})", rd("features_fit"), rd("y_fit"));
  EXPECT_THROW(score_views(*det, at::randn({4}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::randn({4, 64}), at::Tensor()), ShapeError);
  EXPECT_THROW(score_views(*det, at::ones({4, 128}, at::kLong), at::Tensor()), ShapeError);
  auto fresh = make_detector("knn");
  Views v;
  v.set_features(at::randn({4, 8}));
  EXPECT_THROW(fresh->fit_batch(v, at::zeros({3}, at::kLong)), ShapeError);
  Views nan;
  nan.set_features(at::full({2, 8}, std::numeric_limits<float>::quiet_NaN()));
  EXPECT_THROW(fresh->fit_batch(nan, at::zeros({2}, at::kLong)), ShapeError);
  EXPECT_THROW(fresh->finish_fit(), StateError);  // nothing seen
}

}  // namespace
}  // namespace ood::test
