// resnet: torchvision's state dicts load strictly and give torchvision's outputs
// (tests/fixtures/resnet, written by generate.py with Debian's torchvision 0.14).
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

std::string resnet18_params(const std::string& weights) {
  return R"({"depth": 18, "num_classes": 5, "weights": ")" + weights + "\"}";
}

const c10::Dict<c10::IValue, c10::IValue>& resnet18_data() {
  static const auto data = load_tensor_dict_file("resnet/resnet18_data.pt");
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

TEST(ResNet, TorchvisionResnet18StateDictLoadsStrictlyAndGivesItsOutputs) {
  auto model = make_model("resnet", resnet18_params(fixture("resnet/resnet18_state.pt").string()));
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(resnet18_data(), "x");
  const at::Tensor features = model->features(x);
  EXPECT_TRUE(all_close(features, tensor_of(resnet18_data(), "features"), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(model->head(features), tensor_of(resnet18_data(), "logits"), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(model->logits(x), tensor_of(resnet18_data(), "logits"), 1e-4, 1e-5));
  ASSERT_TRUE(model->has_feature_map());
  const at::Tensor fmap = model->features_before_pool(x);
  EXPECT_TRUE(all_close(fmap, tensor_of(resnet18_data(), "feature_map"), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(model->pool(fmap), features, 1e-6, 1e-6));
  const auto info = model->info();
  EXPECT_EQ(info.num_classes, 5);
  EXPECT_EQ(info.feature_dim, 512);
  // The head's weights are the file's fc (stored in float16, converted on loading).
  const TensorDict file = io::load_state_dict(fixture("resnet/resnet18_state.pt"));
  const auto head = model->linear_head();
  ASSERT_TRUE(head.has_value());
  EXPECT_TRUE(head->weight.equal(file.at("fc.weight").to(at::kFloat)));
  EXPECT_TRUE(head->bias.equal(file.at("fc.bias").to(at::kFloat)));
  // Every entry arrived, batch-norm statistics included.
  const TensorDict own = model->state_dict();
  ASSERT_EQ(own.keys(), file.keys());
  for (const auto& [name, t] : file) EXPECT_TRUE(own.at(name).equal(t.to(own.at(name).scalar_type()))) << name;
}

TEST(ResNet, IntermediateLayersAreTheTorchvisionModulesOutputs) {
  auto model = make_model("resnet", resnet18_params(fixture("resnet/resnet18_state.pt").string()));
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(resnet18_data(), "x_small");
  const std::vector<std::string> names = {"conv1", "layer1", "layer2", "layer3", "layer4"};
  EXPECT_EQ(model->layer_names(), names);
  const TensorDict all = model->intermediate(x, names);
  for (const auto& n : names) EXPECT_TRUE(all_close(all.at(n), tensor_of(resnet18_data(), n), 1e-4, 1e-5)) << n;
  // A subset, in the order asked for (the forward stops at layer2).
  const TensorDict some = model->intermediate(x, {"layer2", "conv1"});
  EXPECT_EQ(some.keys(), (std::vector<std::string>{"layer2", "conv1"}));
  EXPECT_TRUE(some.at("layer2").equal(all.at("layer2")));
  const std::string msg = error_of([&] { model->intermediate(x, {"layer5"}); });
  EXPECT_NE(msg.find("no layer 'layer5'"), std::string::npos) << msg;
}

// The same weights as generate.py's formula_weights(): entry k with n elements gets
// u_i = 2 frac(43758.5453 sin(12.9898 i + 78.233 k)) - 1 in float64, scaled.
TensorDict formula_weights(const TensorDict& own) {
  TensorDict out;
  std::int64_t k = 0;
  for (const auto& [name, t] : own) {
    if (name.size() > 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0) {
      out.set(name, t);
      ++k;
      continue;
    }
    const at::Tensor s =
        at::sin(at::arange(t.numel(), at::kDouble) * 12.9898 + static_cast<double>(k) * 78.233) * 43758.5453;
    const at::Tensor u = (2 * (s - at::floor(s)) - 1).reshape(t.sizes());
    auto ends = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    at::Tensor v;
    if (ends("running_var")) v = 0.5 + u * u;
    else if (t.dim() > 1) v = u * std::sqrt(6.0 / static_cast<double>(t[0].numel()));
    else if (ends("bn3.weight")) v = 0.2 + 0.1 * u;
    else v = 0.1 * u + (ends("weight") ? 1.0 : 0.0);
    out.set(name, v.to(t.scalar_type()));
    ++k;
  }
  return out;
}

TEST(ResNet, BottleneckResnet50GivesTorchvisionOutputs) {
  auto model = make_model("resnet", R"({"depth": 50, "num_classes": 7})");
  model->load_state_dict(formula_weights(model->state_dict()));
  const auto data = load_tensor_dict_file("resnet/resnet50_data.pt");
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(data, "x");
  EXPECT_TRUE(all_close(model->features(x), tensor_of(data, "features"), 1e-4, 1e-4));
  EXPECT_TRUE(all_close(model->logits(x), tensor_of(data, "logits"), 1e-4, 1e-4));
  EXPECT_EQ(model->info().feature_dim, 2048);
}

TEST(ResNet, EveryArchitectureHasTorchvisionNamesShapesAndParameterCount) {
  std::ifstream in(fixture("resnet/architectures.json"));
  const auto archs = nlohmann::json::parse(in);
  const std::map<std::string, std::string> params = {
      {"resnet18", R"({"depth": 18})"},
      {"resnet34", R"({"depth": 34})"},
      {"resnet50", R"({"depth": 50})"},
      {"resnet101", R"({"depth": 101})"},
      {"resnet152", R"({"depth": 152})"},
      {"resnext50_32x4d", R"({"depth": 50, "groups": 32, "width_per_group": 4})"},
      {"wide_resnet50_2", R"({"depth": 50, "width_per_group": 128})"},
  };
  ASSERT_EQ(archs.size(), params.size());
  for (const auto& [arch, json] : params) {
    SCOPED_TRACE(arch);
    auto model = make_model("resnet", json);
    std::int64_t count = 0;
    for (const auto& p : model->parameters()) count += p.numel();
    EXPECT_EQ(count, archs[arch]["parameters"].get<std::int64_t>());
    const TensorDict own = model->state_dict();
    const auto& expected = archs[arch]["state_dict"];
    ASSERT_EQ(own.size(), expected.size());
    std::size_t i = 0;
    for (const auto& [name, t] : own) {
      EXPECT_EQ(name, expected[i][0].get<std::string>());
      EXPECT_EQ(t.sizes().vec(), expected[i][1].get<std::vector<std::int64_t>>()) << name;
      ++i;
    }
    EXPECT_EQ(model->info().num_classes, 1000);
  }
}

TEST(ResNet, MismatchingStateDictsNameEveryEntry) {
  const TensorDict file = io::load_state_dict(fixture("resnet/resnet18_state.pt"));
  const auto dir = temp_dir("resnet_bad");
  auto attempt = [&](const std::string& json) { return error_of([&] { make_model("resnet", json); }); };

  // Another class count: the fc entries, with both shapes, and where.
  std::string msg = attempt(R"({"depth": 18, "num_classes": 6, "weights": ")" +
                            fixture("resnet/resnet18_state.pt").string() + "\"}");
  EXPECT_NE(msg.find("/test/params/weights"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc.weight (file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("depth=18, num_classes=6"), std::string::npos) << msg;

  // An entry missing and one too many.
  TensorDict edited;
  for (const auto& [name, t] : file)
    if (name != "layer3.1.bn2.running_mean") edited.set(name, t);
  edited.set("layer5.0.conv1.weight", at::zeros({1}));
  io::save_tensor_dict(dir / "edited.pt", edited);
  msg = attempt(resnet18_params((dir / "edited.pt").string()));
  EXPECT_NE(msg.find("1 missing: layer3.1.bn2.running_mean"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 unexpected: layer5.0.conv1.weight"), std::string::npos) << msg;

  // A resnet18 file for a resnet34: layer1.2 ... are missing.
  msg = attempt(R"({"depth": 34, "num_classes": 5, "weights": ")" + fixture("resnet/resnet18_state.pt").string() +
                "\"}");
  EXPECT_NE(msg.find("missing: layer1.2.conv1.weight"), std::string::npos) << msg;

  // Missing file, and a file that is no state dict.
  EXPECT_THROW(make_model("resnet", resnet18_params("/nonexistent/r18.pt")), FileError);
  EXPECT_THROW(make_model("resnet", resnet18_params(fixture("resnet/architectures.json").string())), FileError);
}

TEST(ResNet, DataParallelPrefixIsRemoved) {
  TensorDict prefixed;
  for (const auto& [name, t] : io::load_state_dict(fixture("resnet/resnet18_state.pt")))
    prefixed.set("module." + name, t);
  const auto file = temp_dir("resnet_prefix") / "dp.pt";
  io::save_tensor_dict(file, prefixed);
  auto model = make_model("resnet", resnet18_params(file.string()));
  at::NoGradGuard no_grad;
  EXPECT_TRUE(all_close(model->logits(tensor_of(resnet18_data(), "x")), tensor_of(resnet18_data(), "logits"), 1e-4,
                        1e-5));
}

TEST(ResNet, BadParametersAndInputsGiveClearErrors) {
  std::string msg = error_of([] { make_model("resnet", R"({"depth": 20})"); });
  EXPECT_NE(msg.find("/test/params/depth: depth must be 18, 34, 50, 101 or 152, got 20"), std::string::npos) << msg;
  msg = error_of([] { make_model("resnet", R"({"depth": 18, "groups": 32})"); });
  EXPECT_NE(msg.find("/test/params/groups"), std::string::npos) << msg;
  EXPECT_THROW(make_model("resnet", R"({"depth": 18, "num_classes": 0})"), InvalidArgument);
  auto model = make_model("resnet", R"({"depth": 18, "num_classes": 3})");
  at::NoGradGuard no_grad;
  EXPECT_EQ(model->logits(at::randn({2, 3, 40, 56})).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(model->logits(at::randn({2, 1, 32, 32})), ShapeError);
  EXPECT_THROW(model->logits(at::randn({3, 32, 32})), ShapeError);
  EXPECT_THROW(model->head(at::randn({2, 2048})), ShapeError);
  EXPECT_THROW(model->pool(at::randn({2, 256, 2, 2})), ShapeError);
}

TEST(ResNet, TrainModeUsesBatchStatisticsMcDropoutDoesNot) {
  auto model = make_model("resnet", resnet18_params(fixture("resnet/resnet18_state.pt").string()));
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(resnet18_data(), "x");
  model->set_mode(ModelMode::McDropout);  // no dropout in a ResNet: the same as eval
  EXPECT_TRUE(all_close(model->logits(x), tensor_of(resnet18_data(), "logits"), 1e-4, 1e-5));
  model->set_mode(ModelMode::Train);
  EXPECT_FALSE(all_close(model->logits(x), tensor_of(resnet18_data(), "logits"), 1e-2, 1e-2));
  model->set_mode(ModelMode::Eval);
}

}  // namespace
}  // namespace ood::test
