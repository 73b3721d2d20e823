// torchscript: the TorchScript export of the reference network gives the reference
// outputs and every detector's scores; other exported networks give their views from
// their own methods, and every missing view is an error naming the method.
#include "test_support.hpp"

#include <fstream>

#include "ood/core/detector_setup.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/logit_detector.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

std::shared_ptr<Model> script_model(const std::string& fixture_file, const std::string& extra = "") {
  return make_model("torchscript", R"({"path": ")" + fixture(fixture_file).string() + "\"" + extra + "}");
}

const c10::Dict<c10::IValue, c10::IValue>& script_data() {
  static const auto data = load_tensor_dict_file("torchscript/data.pt");
  return data;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(TorchScript, ReferenceExportGivesReferenceLogitsAndFeatures) {
  auto model = script_model("reference/model/wrn_traced.pt");
  at::NoGradGuard no_grad;
  for (const std::string side : {"fit", "in", "out"}) {
    SCOPED_TRACE(side);
    const at::Tensor x = tensor_of(reference_data(), "x_" + side);
    const at::Tensor logits = tensor_of(reference_data(), "logits_" + side);
    const at::Tensor features = tensor_of(reference_data(), "features_" + side);
    EXPECT_TRUE(all_close(model->logits(x), logits, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(model->features(x), features, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(model->head(features), logits, 1e-4, 1e-4));  // through the fc submodule
    ASSERT_TRUE(model->has_feature_map());
    // The map's mean is checked against forward_from_before_pool on the first call.
    EXPECT_TRUE(all_close(model->pool(model->features_before_pool(x)), features, 1e-4, 1e-4));
  }
  const auto info = model->info();
  EXPECT_EQ(info.num_classes, 10);
  EXPECT_EQ(info.feature_dim, 128);
  const TensorDict file = io::load_state_dict(fixture("reference/model/wrn_state.pt"));
  const auto head = model->linear_head();
  ASSERT_TRUE(head.has_value());
  EXPECT_TRUE(head->weight.equal(file.at("fc.weight")));
  EXPECT_TRUE(head->bias.equal(file.at("fc.bias")));
}

TEST(TorchScript, StateDictHasTheModulesNamesAndLoadsStrictly) {
  auto model = script_model("reference/model/wrn_traced.pt");
  const TensorDict file = io::load_state_dict(fixture("reference/model/wrn_state.pt"));
  const TensorDict own = model->state_dict();
  ASSERT_EQ(own.keys(), file.keys());
  for (const auto& [name, t] : file) EXPECT_TRUE(own.at(name).equal(t)) << name;
  // `weights` loads a state dict over the module's own parameters.
  TensorDict zeroed;
  for (const auto& [name, t] : file) zeroed.set(name, name == "fc.bias" ? at::ones_like(t) : t);
  const auto path = temp_dir("ts_weights") / "w.pt";
  io::save_tensor_dict(path, zeroed);
  auto loaded = script_model("reference/model/wrn_traced.pt", R"(, "weights": ")" + path.string() + "\"");
  EXPECT_TRUE(loaded->linear_head()->bias.equal(at::ones({10})));
  TensorDict bad;
  for (const auto& [name, t] : file)
    if (name != "bn1.running_var") bad.set(name, name == "fc.weight" ? at::zeros({3, 128}) : t);
  const std::string msg = error_of([&] { loaded->load_state_dict(bad); });
  EXPECT_CONTAINS(msg, "1 missing: bn1.running_var");
  EXPECT_CONTAINS(msg, "fc.weight (file");
}

// Every registered detector scores the TorchScript export as it scores the wide-resnet
// plugin with the same weights (whose own tests compare with pytorch-ood's scores);
// the logit detectors with reference fixtures are also compared with those directly.
TEST(TorchScript, EveryDetectorScoresTheExportLikeTheReferenceModel) {
  auto script = script_model("reference/model/wrn_traced.pt");
  auto native = reference_model();
  const at::Tensor x_fit = tensor_of(reference_data(), "x_fit");
  const at::Tensor y_fit = tensor_of(reference_data(), "y_fit");
  // Half of each side keeps the test short; equality needs no more samples.
  const at::Tensor x = at::cat({tensor_of(reference_data(), "x_in").slice(0, 0, 32),
                                tensor_of(reference_data(), "x_out").slice(0, 0, 32)});
  int compared = 0;
  for (const auto& name : registry().names(Kind::Detector)) {
    SCOPED_TRACE(name);
    std::shared_ptr<Detector> a, b;
    try {
      a = make_detector(name);
      b = make_detector(name);
    } catch (const InvalidArgument&) {
      continue;  // a detector without defaults for its required parameters
    }
    const DetectorNeeds needs = a->needs();
    // Layers: a TorchScript module exposes none; stochastic passes: the traced module
    // has dropout compiled out, the native one does not.
    if (!needs.layers.empty() || needs.stochastic_passes) continue;
    if (needs.fit) {
      fit_on_model(*a, *script, x_fit, y_fit);
      fit_on_model(*b, *native, x_fit, y_fit);
    } else {
      a->attach(*script);
      b->attach(*native);
    }
    EXPECT_TRUE(all_close(score_on_model(*a, *script, x), score_on_model(*b, *native, x), 1e-4, 1e-4));
    ++compared;
  }
  EXPECT_GE(compared, 4);
  const std::map<std::string, std::string> fixtures = {
      {"max-softmax", "maxsoftmax"}, {"energy-based", "energy"}, {"max-logit", "maxlogit"}, {"entropy", "entropy"}};
  for (const auto& [name, file] : fixtures) {
    SCOPED_TRACE(name);
    const auto ref = load_tensor_dict_file("reference/detectors/" + file + ".pt");
    auto det = make_detector(name);
    // Detectors with a temperature keep the t = 1 run under "scores_t1_*".
    const std::string key = ref.contains("scores_t1_in") ? "scores_t1_" : "scores_";
    EXPECT_TRUE(all_close(score_on_model(*det, *script, tensor_of(reference_data(), "x_in")),
                          tensor_of(ref, key + "in"), 1e-4, 1e-4));
    EXPECT_TRUE(all_close(score_on_model(*det, *script, tensor_of(reference_data(), "x_out")),
                          tensor_of(ref, key + "out"), 1e-4, 1e-4));
  }
}

TEST(TorchScript, AnotherArchitectureGivesViewsFromItsOwnMethods) {
  auto model = script_model("torchscript/cnn_maxpool.pt");
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(script_data(), "x_cnn");
  EXPECT_TRUE(all_close(model->logits(x), tensor_of(script_data(), "logits_cnn"), 1e-5, 1e-6));
  // No `features` method: the module's own pool of its feature map (a max pool here).
  EXPECT_TRUE(all_close(model->features(x), tensor_of(script_data(), "features_cnn"), 1e-5, 1e-6));
  ASSERT_TRUE(model->has_feature_map());
  EXPECT_TRUE(all_close(model->features_before_pool(x), tensor_of(script_data(), "map_cnn"), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(model->head(model->features(x)), tensor_of(script_data(), "logits_cnn"), 1e-5, 1e-6));
  // Through Views, as the evaluator computes them.
  Views views(*model, x);
  EXPECT_TRUE(all_close(views.logits(), tensor_of(script_data(), "logits_cnn"), 1e-5, 1e-6));
  // Its linear layer is `classifier`: no linear head unless it is named.
  EXPECT_FALSE(model->linear_head().has_value());
  auto named = script_model("torchscript/cnn_maxpool.pt", R"(, "linear_head": "classifier")");
  ASSERT_TRUE(named->linear_head().has_value());
  EXPECT_EQ(named->linear_head()->weight.sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(named->info().num_classes, 4);
  // MC dropout turns on its Dropout submodule only; eval is deterministic again.
  model->set_mode(ModelMode::McDropout);
  EXPECT_FALSE(model->logits(x).equal(model->logits(x)));
  model->set_mode(ModelMode::Eval);
  EXPECT_TRUE(model->logits(x).equal(model->logits(x)));
}

TEST(TorchScript, EveryMissingViewIsAnErrorNamingTheMethod) {
  auto model = script_model("torchscript/mlp.pt");  // forward only; `fc` is a Sequential
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(script_data(), "x_mlp");
  EXPECT_TRUE(all_close(model->logits(x), tensor_of(script_data(), "logits_mlp"), 1e-5, 1e-6));
  std::string msg = error_of([&] { model->features(x); });
  EXPECT_CONTAINS(msg, "gives no features: it needs a method 'features' (or 'features_before_pool' with");
  EXPECT_CONTAINS(msg, "mlp.pt");
  msg = error_of([&] { model->head(at::zeros({3, 12})); });
  EXPECT_CONTAINS(msg, "a method 'head' or a torch.nn.Linear submodule 'fc'");
  msg = error_of([&] { model->features_before_pool(x); });
  EXPECT_CONTAINS(msg, "a method 'features_before_pool'");
  EXPECT_FALSE(model->has_feature_map());
  EXPECT_FALSE(model->linear_head().has_value());
  EXPECT_TRUE(model->layer_names().empty());
  EXPECT_THROW(model->intermediate(x, {"hidden"}), NotSupported);
  // Views asking for features (every feature detector) get the same message.
  Views views(*model, x);
  msg = error_of([&] { views.features(); });
  EXPECT_CONTAINS(msg, "'features'");

  // Named explicitly, a linear head that is absent or not a Linear is refused up front.
  msg = error_of([] { script_model("torchscript/mlp.pt", R"(, "linear_head": "fc")"); });
  EXPECT_CONTAINS(msg, "/test/params/linear_head: submodule 'fc'");
  EXPECT_CONTAINS(msg, "torch.nn.modules.container.Sequential, not a torch.nn.Linear");
  msg = error_of([] { script_model("torchscript/mlp.pt", R"(, "linear_head": "out")"); });
  EXPECT_CONTAINS(msg, "has no submodule 'out' (its submodules: hidden, fc, fc.0, fc.1)");

  // When the pipeline is built, a detector needing the linear head or the feature map
  // is refused, naming it and the model.
  struct Needy : LogitDetector {
    Needy(bool head, bool map) : LogitDetector("needy", [](const at::Tensor& l) { return l.sum(1); }) {
      needs_.linear_head = head;
      needs_.feature_map = map;
    }
    DetectorNeeds needs() const override { return needs_; }
    DetectorNeeds needs_;
  };
  ComponentSpec spec{"needy", Params::from_json_text("{}", "/detectors/needy/params"), "/detectors/needy"};
  for (const bool head : {true, false}) {
    Needy detector(head, !head);
    msg = error_of([&] { core::attach_detector(detector, spec, "/detectors/needy", *model, "torchscript"); });
    EXPECT_CONTAINS(msg, "/detectors/needy: detector 'needy' needs");
    EXPECT_CONTAINS(msg, head ? "linear last layer" : "feature map");
    // and names what the module would have to export
    EXPECT_CONTAINS(msg, head ? "a torch.nn.Linear submodule 'fc'" : "a method 'features_before_pool'");
  }
  struct FeatureNeedy : LogitDetector {
    FeatureNeedy() : LogitDetector("needy", [](const at::Tensor& l) { return l.sum(1); }) {}
    DetectorNeeds needs() const override {
      DetectorNeeds n;
      n.features = true;
      return n;
    }
  } feature_needy;
  msg = error_of([&] { core::attach_detector(feature_needy, spec, "/detectors/needy", *model, "torchscript"); });
  EXPECT_CONTAINS(msg, "needs the penultimate features of the model, which model 'torchscript' does not provide");
  EXPECT_CONTAINS(msg, "it needs a method 'features' (or 'features_before_pool' with");
}

TEST(TorchScript, MeanPoolingIsCheckedAgainstForwardFromBeforePool) {
  // A traced network that max-pools, exporting no pool method: the mean of its map is
  // not what its head sees, so the feature map is refused instead of mis-scored.
  auto model = script_model("torchscript/maxpool_traced.pt");
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(script_data(), "x_traced");
  EXPECT_EQ(model->logits(x).sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(model->features_before_pool(x).sizes(), (std::vector<int64_t>{2, 5, 8, 8}));
  for (int i = 0; i < 2; ++i) {  // refused on every call, not only the first
    const std::string msg = error_of([&] { model->features(x); });
    EXPECT_CONTAINS(msg, "differs from forward_from_before_pool");
    EXPECT_CONTAINS(msg, "export a 'pool' method");
  }
  // With neither pool nor forward_from_before_pool, the map cannot be pooled at all.
  auto unpoolable = script_model("torchscript/map_only.pt");
  EXPECT_FALSE(unpoolable->has_feature_map());
  EXPECT_EQ(unpoolable->features_before_pool(x).sizes(), (std::vector<int64_t>{2, 5, 8, 8}));
  std::string msg = error_of([&] { unpoolable->features(x); });
  EXPECT_CONTAINS(msg, "'features_before_pool' with 'pool' or 'forward_from_before_pool'");
  msg = error_of([&] { unpoolable->pool(at::zeros({2, 5, 8, 8})); });
  EXPECT_CONTAINS(msg, "gives no pooling of the feature map: it needs a method 'pool'");
}

TEST(TorchScript, BadFilesAndInputsAreClearErrors) {
  std::string msg = error_of([] { make_model("torchscript", R"({"path": "/nonexistent/m.pt"})"); });
  EXPECT_CONTAINS(msg, "/nonexistent/m.pt: no such file");
  // A state dict is not a TorchScript module.
  msg = error_of([] { script_model("reference/model/wrn_state.pt"); });
  EXPECT_CONTAINS(msg, "wrn_state.pt: not a readable TorchScript module");
  // A truncated archive.
  const auto dir = temp_dir("ts_truncated");
  {
    std::ifstream in(fixture("reference/model/wrn_traced.pt"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "cut.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  msg = error_of([&] { make_model("torchscript", R"({"path": ")" + (dir / "cut.pt").string() + "\"}"); });
  EXPECT_CONTAINS(msg, "cut.pt: not a readable TorchScript module");
  // A view method with another signature.
  msg = error_of([] { script_model("torchscript/two_args.pt"); });
  EXPECT_CONTAINS(msg, "method 'features' takes 2 arguments");
  EXPECT_THROW(make_model("torchscript", "{}"), InvalidArgument);  // path is required
  // Inputs the module cannot take: the method and the input are named.
  auto model = script_model("reference/model/wrn_traced.pt");
  at::NoGradGuard no_grad;
  msg = error_of([&] { model->logits(at::zeros({2, 1, 32, 32})); });
  EXPECT_CONTAINS(msg, "method 'forward' failed on inputs Float [2, 1, 32, 32]: RuntimeError: Given groups=1");
  EXPECT_EQ(msg.find("Traceback"), std::string::npos) << msg;
  EXPECT_THROW(model->head(at::zeros({2, 7})), ShapeError);
}

}  // namespace
}  // namespace ood::test
