// Deep SVDD loss and detector: parity with pytorch-ood's DeepSVDDLoss (every case and
// reduction of the fixture, float32 and float64), the paper's first-batch centre, and the
// detector's distance.
#include "test_support.hpp"

#include <iomanip>
#include <sstream>

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

class StubModel final : public Model {
 public:
  StubModel(std::int64_t classes, std::int64_t dim) : classes_(classes), dim_(dim) {}
  at::Tensor features(const at::Tensor& x) override { return x; }
  at::Tensor head(const at::Tensor& f) override { return f; }
  void set_mode(ModelMode m) override { mode_ = m; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {}; }
  TensorDict state_dict() const override { return {}; }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override {
    ModelInfo i;
    i.num_classes = classes_;
    i.feature_dim = dim_;
    return i;
  }

 private:
  std::int64_t classes_, dim_;
  ModelMode mode_ = ModelMode::Train;
};

struct Result {
  at::Tensor value, grad;
};

Result run(Loss& loss, const at::Tensor& z_in, const at::Tensor& y) {
  at::Tensor z = z_in.detach().clone().requires_grad_(true);
  Views v;
  v.set_logits(z);
  at::Tensor value = loss.forward(v, y);
  (value.dim() == 0 ? value : value.sum()).backward();
  return {value.detach(), z.grad()};
}

const auto& fx() {
  static const auto d = load_tensor_dict_file("reference/losses/deep_svdd.pt");
  return d;
}

/// A float32 tensor as a JSON list (9 significant digits: exact for float32).
std::string json_list(const at::Tensor& t) {
  std::ostringstream os;
  os << std::setprecision(9) << "[";
  const at::Tensor f = t.reshape(-1).to(at::kFloat);
  for (std::int64_t i = 0; i < f.numel(); ++i) os << (i ? ", " : "") << f[i].item<float>();
  os << "]";
  return os.str();
}

TEST(DeepSvdd, MatchesPytorchOodForEveryCase) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  ASSERT_TRUE((y < 0).any().item<bool>());
  const at::Tensor all_in = at::zeros_like(y);  // y = None in pytorch-ood: every sample IN
  const std::string center = json_list(tensor_of(fx(), "inputs_center"));
  std::vector<std::tuple<std::string, std::string, at::Tensor>> cases;
  for (const std::string red : {"mean", "sum", "none"}) {
    const std::string params = R"({"n_dim": 4, "radius": 0.8, "reduction": ")" + red + R"(", "center": )" + center + "}";
    cases.emplace_back("svdd_center_" + red, params, y);
    cases.emplace_back("svdd_center_noy_" + red, params, all_in);
  }
  cases.emplace_back("svdd_default", R"({"n_dim": 4, "center": )" + json_list(tensor_of(fx(), "svdd_random_center")) + "}",
                     y);
  for (const auto& [key, params, targets] : cases) {
    auto loss = make_loss("deep-svdd", params);
    for (const bool f64 : {false, true}) {
      const std::string sfx = f64 ? "_f64" : "";
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      const Result r = run(*loss, f64 ? x.to(at::kDouble) : x, targets);
      EXPECT_TRUE(all_close(r.value, tensor_of(fx(), key + "_value" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(r.grad, tensor_of(fx(), key + "_grad_x" + sfx), rtol, atol)) << key << sfx;
    }
  }
}

TEST(DeepSvdd, DetectorScoresTheDistance) {
  const at::Tensor x = tensor_of(fx(), "inputs_x");
  const at::Tensor c = tensor_of(fx(), "svdd_random_center");
  StubModel model(4, 4);
  auto det = make_detector("deep-svdd", R"({"center": )" + json_list(c) + "}");
  det->attach(model);
  EXPECT_TRUE(all_close(score_logits(*det, x), tensor_of(fx(), "svdd_distance"), 1e-5, 1e-6));

  const auto dir = temp_dir("deep_svdd_checkpoint");
  auto loss = make_loss("deep-svdd", R"({"center": )" + json_list(c) + "}");
  TensorDict file;
  for (const auto& [k, v] : loss->state()) file.set("loss." + k, v);
  io::save_tensor_dict(dir / "train.pt", file);
  auto from_file = make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "train.pt").string() + "\"}");
  from_file->attach(model);
  EXPECT_TRUE(all_close(score_logits(*from_file, x), tensor_of(fx(), "svdd_distance"), 1e-5, 1e-6));
  // radius: score = d - r^2
  auto with_r = make_detector("deep-svdd", R"({"radius": 0.5, "center": )" + json_list(c) + "}");
  EXPECT_TRUE(all_close(score_logits(*with_r, x), tensor_of(fx(), "svdd_distance") - 0.25, 1e-5, 1e-6));

  TensorDict empty;
  empty.set("model.w", at::zeros({1}));
  io::save_tensor_dict(dir / "no_center.pt", empty);
  EXPECT_THROW(make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "no_center.pt").string() + "\"}"), StateError);
  EXPECT_THROW(make_detector("deep-svdd", R"({"checkpoint": ")" + (dir / "absent.pt").string() + "\"}"), FileError);
  EXPECT_THROW(make_detector("deep-svdd"), InvalidArgument);  // neither checkpoint nor center
  StubModel three(3, 3);
  auto det3 = make_detector("deep-svdd", R"({"center": )" + json_list(c) + "}");
  EXPECT_THROW(det3->attach(three), InvalidArgument);
}

TEST(DeepSvdd, CentreIsTheMeanOfTheFirstBatch) {
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  auto loss = make_loss("deep-svdd", R"({"radius": 0.8})");
  StubModel model(4, 4);
  loss->attach(model);
  EXPECT_TRUE(loss->state().empty());
  // a batch without IN samples does not set it
  EXPECT_EQ(run(*loss, x, at::full_like(y, -1)).value.item<float>(), 0.0f);
  EXPECT_TRUE(loss->state().empty());
  const Result first = run(*loss, x, y);
  const at::Tensor mean = x.index({y >= 0}).mean(0, true);
  EXPECT_TRUE(all_close(loss->state().at("_center._params"), mean, 0, 0));
  auto explicit_center = make_loss("deep-svdd", R"({"radius": 0.8, "center": )" + json_list(mean) + "}");
  EXPECT_TRUE(all_close(first.value, run(*explicit_center, x, y).value, 0, 0));
  // kept: a second batch does not move it
  run(*loss, x * 2, y);
  EXPECT_TRUE(all_close(loss->state().at("_center._params"), mean, 0, 0));
  EXPECT_EQ(loss->parameters().size(), 0u);
}

TEST(DeepSvdd, HandComputedCase) {
  // c = (1, 0), r = 1: z = (3, 0) IN -> 4 - 1 = 3; z = (1, 0.5) IN -> relu(0.25 - 1) = 0; OOD -> 0
  auto loss = make_loss("deep-svdd", R"({"radius": 1.0, "center": [1, 0], "reduction": "sum"})");
  const Result r = run(*loss, at::tensor({3.0, 0.0, 1.0, 0.5, 9.0, 9.0}, at::kDouble).view({3, 2}),
                       at::tensor({0, 0, -1}, at::kLong));
  EXPECT_NEAR(r.value.item<double>(), 3.0, 1e-12);
  EXPECT_TRUE(all_close(r.grad, at::tensor({4.0, 0.0, 0.0, 0.0, 0.0, 0.0}, at::kDouble).view({3, 2}), 1e-12, 1e-12));
}

TEST(DeepSvdd, StateRoundTripAndBadInputs) {
  auto loss = make_loss("deep-svdd", R"({"center": [1, 2, 3, 4]})");
  auto restored = make_loss("deep-svdd");
  restored->load_state(loss->state());
  const at::Tensor x = tensor_of(fx(), "inputs_x"), y = tensor_of(fx(), "inputs_y");
  EXPECT_TRUE(all_close(run(*restored, x, y).value, run(*loss, x, y).value, 0, 0));
  TensorDict bad;
  bad.set("center", at::zeros({1, 4}));
  EXPECT_THROW(restored->load_state(bad), StateError);
  TensorDict wrong;
  wrong.set("_center._params", at::zeros({1, 3}));
  EXPECT_THROW(restored->load_state(wrong), StateError);
  EXPECT_THROW(run(*loss, x, at::zeros({12})), ShapeError);
  EXPECT_THROW(run(*loss, x, at::zeros({11}, at::kLong)), ShapeError);
  EXPECT_THROW(run(*loss, at::randn({2, 3}), at::zeros({2}, at::kLong)), ShapeError);
  StubModel model(5, 4);
  EXPECT_THROW(make_loss("deep-svdd", R"({"n_dim": 4})")->attach(model), InvalidArgument);  // logits have 5
  make_loss("deep-svdd", R"({"n_dim": 4, "embedding": "features"})")->attach(model);
  EXPECT_THROW(make_loss("deep-svdd", R"({"n_dim": 3, "center": [1, 2]})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
