// MCHAD loss and detector. The fixture holds pytorch-ood's values, whose outlier term
// compares margin^2 with d^4; a test-side float64 reference reproduces them (validating
// itself), and the plugin must equal the same reference with the definition (margin^2 vs
// the squared distance d) and must not reproduce the artefact.
#include "test_support.hpp"

#include "loss_runs.hpp"
#include "stub_models.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/mchad.pt");
  return d;
}

struct Case {
  std::string key, base, params;
  double radius, margin, wc, wn, wo;
};
const std::vector<Case> kCases = {
    {"eye", R"({"n_classes": 5, "n_dim": 5, "radius": 0.5, "margin": 2.0)",
     R"({"n_classes": 5, "n_dim": 5, "radius": 0.5, "margin": 2.0})", 0.5, 2.0, 1, 1, 1},
    {"random", R"({"n_classes": 5, "n_dim": 3, "radius": 1.0, "margin": 3.0)",
     R"({"n_classes": 5, "n_dim": 3, "radius": 1.0, "margin": 3.0, "weight_center": 0.5, "weight_nll": 1.0, "weight_oe": 0.1})",
     1.0, 3.0, 0.5, 1.0, 0.1},
};

TensorDict centers_state(const at::Tensor& c) {
  TensorDict s;
  s.set("center_loss._centers._params", c);
  return s;
}

/// Independent float64 reference (distances by broadcasting, loops over rows).
LossRun reference(const Case& c, const at::Tensor& z_in, const at::Tensor& centers_in, const at::Tensor& y,
                  bool artefact) {
  at::Tensor z = z_in.detach().to(at::kDouble).clone().requires_grad_(true);
  at::Tensor mu = centers_in.detach().to(at::kDouble).clone().requires_grad_(true);
  const std::int64_t n = z.size(0), k = mu.size(0);
  const at::Tensor d = (z.unsqueeze(1) - mu.unsqueeze(0)).pow(2).sum(2);
  at::Tensor center = at::zeros({}, at::kDouble), nll = at::zeros({}, at::kDouble), oe = at::zeros({}, at::kDouble);
  std::int64_t n_in = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t yi = y[i].item<std::int64_t>();
    if (yi >= 0) {
      ++n_in;
      center = center + (d[i][yi] - c.radius).relu().clamp_min(1e-12) + 1e-12 * static_cast<double>(k - 1);
      nll = nll + d[i][yi] + at::logsumexp(-d[i], 0);
    } else {
      const at::Tensor di = artefact ? d[i].pow(2) : d[i];
      oe = oe + (c.margin * c.margin - di).relu().sum();
    }
  }
  center = center / static_cast<double>(n_in * k);
  nll = nll / static_cast<double>(n);
  const at::Tensor value = c.wc * center + c.wn * nll + c.wo * oe;
  value.backward();
  return {value.detach(), z.grad(), mu.grad()};
}

TEST(Mchad, ReferenceReproducesPytorchOod) {
  const at::Tensor y = tensor_of(fx(), "inputs_y");
  for (const auto& c : kCases) {
    const LossRun r =
        reference(c, tensor_of(fx(), "inputs_z_" + c.key), tensor_of(fx(), "centers_init_" + c.key), y, true);
    EXPECT_TRUE(all_close(r.value, tensor_of(fx(), c.key + "_value_f64"), 1e-10, 1e-12)) << c.key;
    EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), c.key + "_grad_z_f64"), 1e-10, 1e-12)) << c.key;
    EXPECT_TRUE(all_close(r.grad_param, tensor_of(fx(), c.key + "_grad_param_center_loss__centers__params_f64"),
                          1e-10, 1e-12))
        << c.key;
  }
}

TEST(Mchad, FollowsTheDefinitionNotThePytorchOodArtefact) {
  const at::Tensor y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>());
  for (const auto& c : kCases) {
    const at::Tensor z = tensor_of(fx(), "inputs_z_" + c.key), init = tensor_of(fx(), "centers_init_" + c.key);
    const LossRun def = reference(c, z, init, y, false);
    for (const bool f64 : {false, true}) {
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      auto loss = make_loss("mchad", c.params);
      loss->load_state(centers_state(f64 ? init.to(at::kDouble) : init));
      const LossRun r = run_loss(*loss, f64 ? z.to(at::kDouble) : z, y);
      EXPECT_TRUE(all_close(r.value, def.value, rtol, atol)) << c.key << f64;
      EXPECT_TRUE(all_close(r.grad, def.grad, rtol, atol)) << c.key << f64;
      EXPECT_TRUE(all_close(r.grad_param, def.grad_param, rtol, atol)) << c.key << f64;
      if (f64) {
        EXPECT_GT((r.value - tensor_of(fx(), c.key + "_value_f64")).abs().item<double>(), 1e-3) << c.key;
        EXPECT_GT((r.grad - tensor_of(fx(), c.key + "_grad_z_f64")).abs().max().item<double>(), 1e-3) << c.key;
      }
    }
  }
}

TEST(Mchad, CenterAndNllTermsEqualPytorchOod) {
  const at::Tensor y = tensor_of(fx(), "inputs_y");
  for (const auto& c : kCases) {
    const at::Tensor parts = tensor_of(fx(), "parts_" + c.key);
    for (int part = 0; part < 2; ++part) {
      const std::string params = c.base + (part == 0 ? R"(, "weight_center": 1, "weight_nll": 0, "weight_oe": 0})"
                                                   : R"(, "weight_center": 0, "weight_nll": 1, "weight_oe": 0})");
      auto loss = make_loss("mchad", params);
      loss->load_state(centers_state(tensor_of(fx(), "centers_init_" + c.key)));
      const LossRun r = run_loss(*loss, tensor_of(fx(), "inputs_z_" + c.key), y);
      EXPECT_TRUE(all_close(r.value, parts[part], 1e-5, 1e-6)) << c.key << " part " << part << " " << params;
    }
  }
}

TEST(Mchad, HandComputedOutlierTermAndSgdStep) {
  // one centre at 0, one OOD sample at z = 1, margin 2: oe = relu(4 - 1) = 3
  auto loss = make_loss("mchad", R"({"n_classes": 1, "n_dim": 1, "margin": 2.0})");
  loss->load_state(centers_state(at::zeros({1, 1}, at::kDouble)));
  const LossRun r = run_loss(*loss, at::ones({1, 1}, at::kDouble), at::full({1}, -1, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(r.grad.item<double>(), -2.0, 1e-12);          // d/dz (4 - z^2)
  EXPECT_NEAR(r.grad_param.item<double>(), 2.0, 1e-12);   // d/dmu (4 - (z - mu)^2)
}

TEST(Mchad, StateRoundTripDetectorAndSizes) {
  IdentityModel model(4, 6);
  auto loss = make_loss("mchad", R"({"embedding": "features"})");
  loss->attach(model);
  ASSERT_EQ(loss->parameters().size(), 1u);
  EXPECT_TRUE(loss->parameters()[0].requires_grad());
  EXPECT_EQ(loss->parameters()[0].sizes(), at::IntArrayRef({4, 6}));
  const at::Tensor param = loss->parameters()[0];
  const at::Tensor trained = at::randn({4, 6});
  loss->load_state(centers_state(trained));
  EXPECT_TRUE(loss->parameters()[0].is_same(param));  // copied in place for the optimiser

  const auto dir = temp_dir("mchad_checkpoint");
  TensorDict file;
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto det = make_detector("mchad", R"({"embedding": "features", "checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  det->attach(model);
  const at::Tensor f = at::randn({5, 6});
  const at::Tensor expected = std::get<0>((f.unsqueeze(1) - trained.unsqueeze(0)).pow(2).sum(2).min(1));
  EXPECT_TRUE(all_close(score_views(*det, f, at::Tensor()), expected, 1e-5, 1e-5));
  auto on_logits = make_detector("mchad", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  EXPECT_THROW(on_logits->attach(model), InvalidArgument);  // centres have 6 dims, logits 4
  EXPECT_THROW(make_detector("mchad", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);

  TensorDict bad;
  bad.set("centers", trained);
  EXPECT_THROW(loss->load_state(bad), StateError);
  EXPECT_THROW(loss->load_state(centers_state(at::zeros({4, 5}))), StateError);
  EXPECT_THROW(make_loss("mchad", R"({"n_classes": 3})")->attach(model), InvalidArgument);
  EXPECT_THROW(make_loss("mchad", R"({"n_dim": 6})")->attach(model), InvalidArgument);
}

TEST(Mchad, BadTargets) {
  auto loss = make_loss("mchad", R"({"n_classes": 5, "n_dim": 3})");
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::zeros({3})), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::zeros({2}, at::kLong)), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 3}), at::full({3}, 5, at::kLong)), ShapeError);
  EXPECT_THROW(run_loss(*loss, at::randn({3, 2}), at::zeros({3}, at::kLong)), ShapeError);
}

}  // namespace
}  // namespace ood::test
