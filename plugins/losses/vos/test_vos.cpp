// vos against pytorch-ood (tests/fixtures/reference/losses/vos.json):
// VirtualOutlierSynthesizingRegLoss (synthesize: true): the three calls of the fixture,
// including the call that draws virtual outliers, reproduced exactly with the seeded
// generator (libtorch's CPU generator is Python's); VOSRegLoss (synthesize: false): every
// case, values and gradients w.r.t. logits, phi and weights_energy, float32 and float64.
#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

// A model whose head is a given linear layer (pytorch-ood's `fc`); features are the inputs.
class LinearHeadModel final : public Model {
 public:
  LinearHeadModel(const at::Tensor& w, const at::Tensor& b)
      : w_(w.detach().clone().requires_grad_(true)), b_(b.detach().clone().requires_grad_(true)) {}
  at::Tensor features(const at::Tensor& x) override { return x; }
  at::Tensor head(const at::Tensor& f) override { return at::addmm(b_.to(f.scalar_type()), f, w_.to(f.scalar_type()).t()); }
  void set_mode(ModelMode m) override { mode_ = m; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {w_, b_}; }
  TensorDict state_dict() const override {
    TensorDict d;
    d.set("fc.weight", w_);
    d.set("fc.bias", b_);
    return d;
  }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override { return {w_.size(0), w_.size(1), {w_.size(1)}}; }
  at::Tensor w_, b_;

 private:
  ModelMode mode_ = ModelMode::Train;
};

at::Tensor grad_or_zeros(const at::Tensor& p) { return p.grad().defined() ? p.grad() : at::zeros_like(p); }

TEST(Vos, SynthesisReproducesPytorchOodsThreeCalls) {
  const auto fx = load_tensor_dict_file("reference/losses/vos.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/vos.json")));
  const auto& ctor = meta["vos_constructor"];
  const auto& seq = meta["vos_sequence"];
  LinearHeadModel model(tensor_of(fx, "vos_fc_weight"), tensor_of(fx, "vos_fc_bias"));
  nlohmann::json params = {{"num_classes", ctor["num_classes"]},
                           {"num_input_last_layer", ctor["num_input_last_layer"]},
                           {"alpha", ctor["alpha"]},
                           {"reduction", ctor["reduction"]},
                           {"sample_number", ctor["sample_number"]},
                           {"select", ctor["select"]},
                           {"sample_from", ctor["sample_from"]},
                           // Only the call with full queues draws: seed as pytorch-ood's generator before it.
                           {"seed", seq[2]["seed_before_call"]}};
  auto loss = make_loss("vos", params.dump());
  loss->attach(model);
  TensorDict st = loss->state();
  st.set("phi.weight", tensor_of(fx, "phi_weight"));
  st.set("phi.bias", tensor_of(fx, "phi_bias"));
  st.set("weights_energy.weight", tensor_of(fx, "weights_energy_weight"));
  st.set("weights_energy.bias", tensor_of(fx, "weights_energy_bias"));
  loss->load_state(st);
  TensorDict before_call2;
  for (int call = 0; call < 3; ++call) {
    const std::string i = std::to_string(call);
    if (call == 2) before_call2 = loss->state();
    at::Tensor logits = tensor_of(fx, "vos_logits" + i).clone().requires_grad_(true);
    Views views(model, at::zeros({logits.size(0), 5}), true);
    views.set_logits(logits);
    views.set_features(tensor_of(fx, "vos_features" + i));
    for (auto& p : model.parameters()) p.mutable_grad() = at::Tensor();
    const at::Tensor value = loss->forward(views, tensor_of(fx, "vos_y" + i));
    value.backward();
    const double rtol = call == 2 ? 1e-4 : 1e-5, atol = call == 2 ? 1e-5 : 1e-6;
    EXPECT_TRUE(all_close(value.detach(), tensor_of(fx, "vos_value" + i), rtol, atol)) << "call " << call;
    EXPECT_TRUE(all_close(logits.grad(), tensor_of(fx, "vos_grad_logits" + i), rtol, atol)) << "call " << call;
    // Only the synthesis call reaches the model's head (fc) and the energy weights.
    const double head_grad = grad_or_zeros(model.w_).abs().sum().item<double>();
    if (call < 2)
      EXPECT_EQ(head_grad, 0.0) << call;
    else
      EXPECT_GT(head_grad, 0.0);
    // The queue counts as pytorch-ood's number_dict.
    const at::Tensor counts = loss->state().at("queue_count");
    for (const auto& [k, n] : seq[call]["number_dict_after"].items())
      EXPECT_EQ(counts[std::stoi(k)].item<int64_t>(), n.get<int64_t>()) << "call " << call << " class " << k;
  }
  EXPECT_TRUE(all_close(loss->state().at("queue"), tensor_of(fx, "vos_queue_after"), 1e-5, 1e-6));

  // Resume: restoring the state before call 2 (queues and generator) gives the same value.
  auto again = make_loss("vos", params.dump());
  again->attach(model);
  again->load_state(before_call2);
  Views views(model, at::zeros({12, 5}), true);
  views.set_logits(tensor_of(fx, "vos_logits2"));
  views.set_features(tensor_of(fx, "vos_features2"));
  EXPECT_TRUE(all_close(again->forward(views, tensor_of(fx, "vos_y2")).detach(), tensor_of(fx, "vos_value2"), 1e-4, 1e-5));
}

TEST(Vos, SynthesisRefusesOutlierTargetsAndSegmentation) {
  at::manual_seed(1);
  LinearHeadModel model(at::randn({3, 4}), at::randn({3}));
  auto loss = make_loss("vos", R"({"sample_number": 2, "sample_from": 10})");
  loss->attach(model);
  Views views(model, at::zeros({2, 4}), true);
  views.set_logits(at::randn({2, 3}));
  views.set_features(at::randn({2, 4}));
  try {
    loss->forward(views, at::tensor({0, -1}, at::kLong));
    ADD_FAILURE() << "an outlier target was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("vos"), std::string::npos);
  }
  EXPECT_THROW(loss->forward(views, at::tensor({0, 3}, at::kLong)), ShapeError);
  EXPECT_THROW(loss->forward(views, at::zeros({2})), ShapeError);
  Views seg(model, at::zeros({2, 4}), true);
  seg.set_logits(at::randn({2, 3, 2, 2}));
  EXPECT_THROW(loss->forward(seg, at::zeros({2, 2, 2}, at::kLong)), NotSupported);
  // Sizes are checked against the model.
  auto wrong = make_loss("vos", R"({"num_classes": 4})");
  EXPECT_THROW(wrong->attach(model), InvalidArgument);
  auto wrong_d = make_loss("vos", R"({"num_input_last_layer": 5})");
  EXPECT_THROW(wrong_d->attach(model), InvalidArgument);
  EXPECT_THROW(make_loss("vos", R"({"select": 20, "sample_from": 10})"), InvalidArgument);
}

TEST(Vos, VosRegMatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/vos.pt");
  const auto meta = nlohmann::json::parse(read_text(fixture("reference/losses/vos.json")));
  int checked = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    nlohmann::json params = {{"synthesize", false},
                             {"alpha", c["constructor"]["alpha"]},
                             {"reduction", c["constructor"]["reduction"]}};
    for (const bool f64 : {false, true}) {
      const auto dt = f64 ? at::kDouble : at::kFloat;
      auto loss = make_loss("vos", params.dump());
      TensorDict st;
      st.set("phi.weight", tensor_of(fx, "phi_weight").to(dt));
      st.set("phi.bias", tensor_of(fx, "phi_bias").to(dt));
      st.set("weights_energy.weight", tensor_of(fx, "weights_energy_weight").to(dt));
      st.set("weights_energy.bias", tensor_of(fx, "weights_energy_bias").to(dt));
      loss->load_state(st);
      at::Tensor logits = tensor_of(fx, c["inputs"]["logits"]).to(dt).detach().clone().requires_grad_(true);
      Views views;
      views.set_logits(logits);
      at::Tensor value = loss->forward(views, tensor_of(fx, c["inputs"]["y"]));
      (value.dim() == 0 ? value : value.sum()).backward();
      const auto params_now = loss->parameters();
      const std::string sfx = f64 ? "_f64" : "";
      const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
      EXPECT_TRUE(all_close(value.detach(), tensor_of(fx, key + "_value" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(logits.grad(), tensor_of(fx, key + "_grad_logits" + sfx), rtol, atol)) << key << sfx;
      EXPECT_TRUE(all_close(grad_or_zeros(params_now[0]), tensor_of(fx, key + "_grad_param_phi_weight" + sfx), rtol, atol))
          << key << sfx;
      EXPECT_TRUE(all_close(grad_or_zeros(params_now[1]), tensor_of(fx, key + "_grad_param_phi_bias" + sfx), rtol, atol))
          << key << sfx;
      EXPECT_TRUE(all_close(grad_or_zeros(params_now[2]), tensor_of(fx, key + "_grad_param_w_weight" + sfx), rtol, atol))
          << key << sfx;
      EXPECT_TRUE(all_close(grad_or_zeros(params_now[3]), tensor_of(fx, key + "_grad_param_w_bias" + sfx), rtol, atol))
          << key << sfx;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(Vos, VosRegGradientIsTheTrueGradientOnOtherSizes) {
  at::manual_seed(17);
  const at::Tensor logits = at::randn({7, 3}, at::kDouble);
  const at::Tensor y = at::tensor({0, -1, 2, -1, 1, 2, 0}, at::kLong);
  TensorDict st;
  st.set("phi.weight", at::tensor({0.7, -0.4}, at::kDouble).view({2, 1}));
  st.set("phi.bias", at::tensor({0.1, -0.3}, at::kDouble));
  st.set("weights_energy.weight", at::tensor({0.2, 0.9, 0.5}, at::kDouble).view({1, 3}));
  st.set("weights_energy.bias", at::tensor({0.0}, at::kDouble));
  const std::string params = R"({"synthesize": false, "alpha": 0.4, "reduction": "sum"})";
  auto value_at = [&](const at::Tensor& z, const TensorDict& s) {
    auto l = make_loss("vos", params);
    l->load_state(s);
    Views v;
    v.set_logits(z);
    return l->forward(v, y).item<double>();
  };
  auto loss = make_loss("vos", params);
  loss->load_state(st);
  at::Tensor z = logits.clone().requires_grad_(true);
  Views v;
  v.set_logits(z);
  loss->forward(v, y).backward();
  const double h = 1e-6;
  for (int64_t i = 0; i < logits.numel(); ++i) {
    at::Tensor up = logits.clone(), dn = logits.clone();
    up.view(-1)[i] += h;
    dn.view(-1)[i] -= h;
    EXPECT_NEAR(z.grad().view(-1)[i].item<double>(), (value_at(up, st) - value_at(dn, st)) / (2 * h), 1e-7) << i;
  }
  const auto ps = loss->parameters();
  const char* names[] = {"phi.weight", "phi.bias", "weights_energy.weight"};
  for (int p = 0; p < 3; ++p) {
    for (int64_t i = 0; i < ps[p].numel(); ++i) {
      TensorDict up = st, dn = st;
      at::Tensor u = st.at(names[p]).clone(), d = st.at(names[p]).clone();
      u.view(-1)[i] += h;
      d.view(-1)[i] -= h;
      up.set(names[p], u);
      dn.set(names[p], d);
      EXPECT_NEAR(ps[p].grad().view(-1)[i].item<double>(), (value_at(logits, up) - value_at(logits, dn)) / (2 * h), 1e-7)
          << names[p] << " " << i;
    }
  }
}

TEST(Vos, StateRoundTripAndErrors) {
  at::manual_seed(2);
  LinearHeadModel model(at::randn({3, 4}), at::randn({3}));
  auto loss = make_loss("vos", R"({"sample_number": 2, "sample_from": 10, "seed": 5})");
  loss->attach(model);
  ASSERT_EQ(loss->parameters().size(), 4u);
  const TensorDict s = loss->state();
  EXPECT_EQ(s.keys(), (std::vector<std::string>{"phi.weight", "phi.bias", "weights_energy.weight",
                                                "weights_energy.bias", "queue", "queue_count", "rng_state"}));
  EXPECT_EQ(s.at("queue").sizes(), at::IntArrayRef({3, 2, 4}));
  EXPECT_GE(s.at("weights_energy.weight").min().item<double>(), 0.0);
  auto other = make_loss("vos", R"({"sample_number": 2, "sample_from": 10, "seed": 6})");
  other->attach(model);
  other->load_state(s);
  for (const auto& [k, t] : s) EXPECT_TRUE(at::equal(other->state().at(k), t)) << k;
  TensorDict bad = s;
  bad.set("queue", at::zeros({3, 3, 4}));
  EXPECT_THROW(other->load_state(bad), StateError);
  TensorDict missing = s;
  missing.erase("rng_state");
  EXPECT_THROW(other->load_state(missing), StateError);
}

}  // namespace
}  // namespace ood::test
