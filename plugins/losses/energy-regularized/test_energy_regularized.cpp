// energy-regularized against pytorch-ood's EnergyRegularizedLoss
// (tests/fixtures/reference/losses/energy_regularized.json): classification cases are
// parity (values and gradients, float32 and float64); segmentation follows POLICY.md
// (energy of the logits for both terms), so those cases are compared with the definition
// computed here from the fixture's inputs, and the pytorch-ood artefact is shown NOT to be
// reproduced.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "loss_runs.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

struct ErParams {
  double alpha = 1.0, m_in = -1.0, m_out = -1.0;
  std::string reduction = "mean";
};

ErParams er_params(const nlohmann::json& c) {
  ErParams p;
  if (c.contains("alpha")) p.alpha = c["alpha"];
  if (c.contains("margin_in")) p.m_in = c["margin_in"];
  if (c.contains("margin_out")) p.m_out = c["margin_out"];
  if (c.contains("reduction")) p.reduction = c["reduction"];
  return p;
}

// The segmentation definition, written pixel by pixel (independent of the plugin's code).
// `artefact` computes pytorch-ood's OOD term relu(-logsumexp(m_out - z))^2 instead.
at::Tensor seg_definition(const at::Tensor& z, const at::Tensor& y, const ErParams& p, bool artefact) {
  const int64_t n = z.size(0), h = z.size(2), w = z.size(3);
  std::vector<at::Tensor> ce(n * h * w);
  at::Tensor sum_in = at::zeros({}, z.options()), sum_out = at::zeros({}, z.options());
  int64_t cnt_in = 0, cnt_out = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < h; ++a)
      for (int64_t b = 0; b < w; ++b) {
        const at::Tensor col = z.index({i, at::indexing::Slice(), a, b});
        const at::Tensor lse = at::logsumexp(col, {0});
        const int64_t t = y.index({i, a, b}).item<int64_t>();
        at::Tensor& out = ce[(i * h + a) * w + b];
        if (t >= 0) {
          out = lse - col[t];
          sum_in = sum_in + (-lse - p.m_in).relu().pow(2);
          ++cnt_in;
        } else {
          out = at::zeros({}, z.options());
          const at::Tensor term = artefact ? (-at::logsumexp(p.m_out - col, {0})).relu() : (p.m_out + lse).relu();
          sum_out = sum_out + term.pow(2);
          ++cnt_out;
        }
      }
  at::Tensor reg = at::zeros({}, z.options());
  if (cnt_in) reg = reg + sum_in / static_cast<double>(cnt_in);
  if (cnt_out) reg = reg + sum_out / static_cast<double>(cnt_out);
  const at::Tensor per = at::stack(ce).view({n, h, w}) + p.alpha * reg;
  if (p.reduction == "none") return per;
  if (p.reduction == "sum") return per.sum();
  return per.mean();
}

TEST(EnergyRegularized, ClassificationMatchesPytorchOod) {
  const auto fx = load_tensor_dict_file("reference/losses/energy_regularized.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/energy_regularized.json")));
  int checked = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    if (key.rfind("cls_", 0) != 0) continue;
    auto loss = make_loss("energy-regularized", c["constructor"].dump());
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["targets"]);
    at::Tensor grad;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits, y, &grad), tensor_of(fx, key + "_value"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits.to(at::kDouble), y, &grad), tensor_of(fx, key + "_value_f64"),
                          1e-10, 1e-12))
        << key;
    EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(EnergyRegularized, SegmentationFollowsTheDefinitionNotTheArtefact) {
  const auto fx = load_tensor_dict_file("reference/losses/energy_regularized.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/energy_regularized.json")));
  int checked = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    if (key.rfind("seg_", 0) != 0) continue;
    const ErParams p = er_params(c["constructor"]);
    auto loss = make_loss("energy-regularized", c["constructor"].dump());
    const at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]);
    const at::Tensor y = tensor_of(fx, c["inputs"]["targets"]);
    ASSERT_TRUE((y < 0).any().item<bool>() && (y >= 0).any().item<bool>());
    // The definition, float64, value and gradient.
    at::Tensor z64 = logits.to(at::kDouble).requires_grad_(true);
    at::Tensor def = seg_definition(z64, y, p, false);
    (def.dim() == 0 ? def : def.sum()).backward();
    at::Tensor grad;
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits.to(at::kDouble), y, &grad), def.detach(), 1e-10, 1e-12))
        << key;
    EXPECT_TRUE(all_close(grad, z64.grad(), 1e-10, 1e-12)) << key;
    // float32 within the float32 tolerance of the definition.
    EXPECT_TRUE(all_close(loss_value_and_grad(*loss, logits, y, &grad), def.detach().to(at::kFloat), 1e-5, 1e-6)) << key;
    EXPECT_TRUE(all_close(grad, z64.grad().to(at::kFloat), 1e-5, 1e-6)) << key;
    // The artefact formula reproduces the fixture (so the comparison is meaningful) ...
    const at::Tensor artefact = seg_definition(logits.to(at::kDouble), y, p, true);
    EXPECT_TRUE(all_close(artefact, tensor_of(fx, key + "_value_f64"), 1e-10, 1e-12)) << key;
    // ... and ood does not reproduce it.
    const at::Tensor ours = loss_value_and_grad(*loss, logits, y, nullptr);
    EXPECT_FALSE(all_close(ours, tensor_of(fx, key + "_value"), 1e-5, 1e-6)) << key;
    EXPECT_GT((ours.to(at::kDouble) - tensor_of(fx, key + "_value_f64")).abs().max().item<double>(), 1e-3) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(EnergyRegularized, HandComputedClassification) {
  // logits (0, 0): E = -log 2. IN (class 0), m_in = -2: CE = log 2, reg = (2 - log 2)^2.
  // OOD, m_out = 0: reg = relu(0 + log 2)^2 = (log 2)^2.
  auto loss = make_loss("energy-regularized", R"({"alpha": 0.5, "margin_in": -2.0, "margin_out": 0.0, "reduction": "none"})");
  const at::Tensor v = loss_value_and_grad(*loss, at::zeros({2, 2}, at::kDouble), at::tensor({0, -1}, at::kLong), nullptr);
  const double l2 = std::log(2.0);
  EXPECT_NEAR(v[0].item<double>(), l2 + 0.5 * (2 - l2) * (2 - l2), 1e-14);
  EXPECT_NEAR(v[1].item<double>(), 0.5 * l2 * l2, 1e-14);
}

TEST(EnergyRegularized, GradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(11);
  for (const bool seg : {false, true}) {
    const at::Tensor logits = seg ? at::randn({2, 4, 3, 2}, at::kDouble) * 2 : at::randn({8, 6}, at::kDouble) * 3;
    const at::Tensor y = seg ? at::tensor({0, -1, 3, 2, -1, 1, 1, 0, -1, 3, 2, 2}, at::kLong).view({2, 3, 2})
                             : at::tensor({0, 5, -1, 3, -1, 2, 4, 1}, at::kLong);
    auto loss = make_loss("energy-regularized", R"({"alpha": 0.3, "margin_in": -3.0, "margin_out": -1.0})");
    expect_gradient_matches_finite_differences(*loss, logits, y, 1e-7, seg ? "seg " : "cls ");
  }
}

TEST(EnergyRegularized, RefusesBadTargetsAndKeepsInputs) {
  auto loss = make_loss("energy-regularized");
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({4}), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::zeros({5}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(loss_value_and_grad(*loss, at::randn({4, 3, 2}), at::zeros({4, 2}, at::kLong), nullptr), ShapeError);
  EXPECT_THROW(make_loss("energy-regularized", R"({"reduction": "avg"})"), InvalidArgument);
  const at::Tensor y = at::tensor({0, -1, 2}, at::kLong), y_copy = y.clone();
  loss_value_and_grad(*loss, at::randn({3, 3}), y, nullptr);
  EXPECT_TRUE(at::equal(y, y_copy));
  EXPECT_TRUE(loss->state().empty());
  EXPECT_NO_THROW(loss->load_state(loss->state()));
}

}  // namespace
}  // namespace ood::test
