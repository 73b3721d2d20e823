// wide-resnet: pytorch-ood's state dicts load and give pytorch-ood's outputs, for the
// reference network and for other depths, widths and input channel counts.
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

std::string reference_params(const std::string& weights_file) {
  return R"({"num_classes": 10, "depth": 16, "widen_factor": 2, "drop_rate": 0.3, "in_channels": 3, "weights": ")" +
         fixture(weights_file).string() + "\"}";
}

TEST(WideResNet, ReferenceStateDictGivesPytorchOodOutputs) {
  auto model = make_model("wide-resnet", reference_params("reference/model/wrn_state.pt"));
  at::NoGradGuard no_grad;
  for (const char* side : {"fit", "in", "out"}) {
    const at::Tensor x = tensor_of(reference_data(), std::string("x_") + side);
    const at::Tensor features = model->features(x);
    EXPECT_TRUE(all_close(features, tensor_of(reference_data(), std::string("features_") + side), 1e-4, 1e-4)) << side;
    EXPECT_TRUE(all_close(model->head(features), tensor_of(reference_data(), std::string("logits_") + side), 1e-4, 1e-4))
        << side;
    EXPECT_TRUE(all_close(model->logits(x), tensor_of(reference_data(), std::string("logits_") + side), 1e-4, 1e-4));
  }
}

TEST(WideResNet, LegacyFormatLoadsTheSameWeights) {
  auto zip = make_model("wide-resnet", reference_params("reference/model/wrn_state.pt"));
  auto legacy = make_model("wide-resnet", reference_params("reference/model/wrn_state_legacy.pt"));
  const auto a = zip->state_dict();
  const auto b = legacy->state_dict();
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& [name, t] : a) EXPECT_TRUE(t.equal(b.at(name))) << name;
}

TEST(WideResNet, StateDictHasPytorchNamesAndOrder) {
  auto model = make_model("wide-resnet", R"({"num_classes": 10, "depth": 16, "widen_factor": 2})");
  std::ifstream in(fixture("reference/model/model.json"));
  const auto meta = nlohmann::json::parse(in);
  const TensorDict file = io::load_state_dict(fixture("reference/model/wrn_state.pt"));
  const TensorDict own = model->state_dict();
  ASSERT_EQ(own.keys(), file.keys());
  for (const auto& [name, t] : file) EXPECT_EQ(own.at(name).sizes(), t.sizes()) << name;
  EXPECT_EQ(meta["state_dict"].is_null(), false);
}

TEST(WideResNet, OtherDepthsWidthsAndChannelsMatchPytorch) {
  for (const std::string name : {"d22_w1_c1", "d10_w3_c2"}) {
    const auto data = load_tensor_dict_file("wide_resnet/" + name + "_data.pt");
    auto scalar = [&](const char* k) { return tensor_of(data, k).item<std::int64_t>(); };
    const std::string params = "{\"num_classes\": " + std::to_string(scalar("num_classes")) +
                               ", \"depth\": " + std::to_string(scalar("depth")) +
                               ", \"widen_factor\": " + std::to_string(scalar("widen_factor")) +
                               ", \"in_channels\": " + std::to_string(scalar("in_channels")) +
                               ", \"weights\": \"" + fixture("wide_resnet/" + name + "_state.pt").string() + "\"}";
    auto model = make_model("wide-resnet", params);
    at::NoGradGuard no_grad;
    const at::Tensor x = tensor_of(data, "x");
    EXPECT_TRUE(all_close(model->features(x), tensor_of(data, "features"), 1e-4, 1e-4)) << name;
    EXPECT_TRUE(all_close(model->logits(x), tensor_of(data, "logits"), 1e-4, 1e-4)) << name;
    EXPECT_EQ(model->info().feature_dim, 64 * scalar("widen_factor"));
  }
}

TEST(WideResNet, SavedStateDictRoundTrips) {
  auto a = make_model("wide-resnet", reference_params("reference/model/wrn_state.pt"));
  const auto file = temp_dir("wrn_roundtrip") / "model.pt";
  io::save_tensor_dict(file, a->state_dict());
  auto b = make_model("wide-resnet", R"({"num_classes": 10, "depth": 16, "widen_factor": 2, "weights": ")" +
                                         file.string() + "\"}");
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(reference_data(), "x_in");
  EXPECT_TRUE(a->logits(x).equal(b->logits(x)));
}

TEST(WideResNet, DataParallelPrefixIsStripped) {
  TensorDict prefixed;
  for (const auto& [name, t] : io::load_state_dict(fixture("reference/model/wrn_state.pt")))
    prefixed.set("module." + name, t);
  const auto file = temp_dir("wrn_prefix") / "model.pt";
  io::save_tensor_dict(file, prefixed);
  auto model = make_model("wide-resnet", R"({"num_classes": 10, "depth": 16, "widen_factor": 2, "weights": ")" +
                                             file.string() + "\"}");
  at::NoGradGuard no_grad;
  EXPECT_TRUE(all_close(model->logits(tensor_of(reference_data(), "x_in")), tensor_of(reference_data(), "logits_in"),
                        1e-4, 1e-4));
}

TEST(WideResNet, LinearHeadAndIntermediateLayers) {
  auto model = make_model("wide-resnet", reference_params("reference/model/wrn_state.pt"));
  const auto head = model->linear_head();
  ASSERT_TRUE(head.has_value());
  const TensorDict file = io::load_state_dict(fixture("reference/model/wrn_state.pt"));
  EXPECT_TRUE(head->weight.equal(file.at("fc.weight")));
  EXPECT_TRUE(head->bias.equal(file.at("fc.bias")));
  at::NoGradGuard no_grad;
  const at::Tensor x = tensor_of(reference_data(), "x_in").slice(0, 0, 4);
  const TensorDict layers = model->intermediate(x, {"before_pool", "block1"});
  EXPECT_EQ(layers.at("before_pool").sizes(), (std::vector<int64_t>{4, 128, 8, 8}));
  EXPECT_EQ(layers.at("block1").sizes(), (std::vector<int64_t>{4, 32, 32, 32}));
  EXPECT_TRUE(all_close(layers.at("before_pool").mean({2, 3}), model->features(x), 1e-5, 1e-6));
  EXPECT_THROW(model->intermediate(x, {"block9"}), InvalidArgument);
}

TEST(WideResNet, McDropoutIsStochasticEvalIsNot) {
  auto model = make_model("wide-resnet", R"({"num_classes": 3, "depth": 10, "widen_factor": 1, "drop_rate": 0.5})");
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 32, 32});
  model->set_mode(ModelMode::Eval);
  EXPECT_TRUE(model->logits(x).equal(model->logits(x)));
  model->set_mode(ModelMode::McDropout);
  EXPECT_FALSE(model->logits(x).equal(model->logits(x)));
  model->set_mode(ModelMode::Eval);
}

TEST(WideResNet, OtherInputSizesArePooledGlobally) {
  auto model = make_model("wide-resnet", R"({"num_classes": 3, "depth": 10, "widen_factor": 1, "in_channels": 1})");
  at::NoGradGuard no_grad;
  EXPECT_EQ(model->logits(at::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 3}));
}

TEST(WideResNet, BadWeightsAndInputsGiveClearErrors) {
  // A state dict for another class count: the mismatching entries are named.
  try {
    make_model("wide-resnet", R"({"num_classes": 7, "depth": 16, "widen_factor": 2, "weights": ")" +
                                  fixture("reference/model/wrn_state.pt").string() + "\"}");
    ADD_FAILURE() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/test/params/weights"), std::string::npos) << e.what();
  }
  // Another depth: missing and unexpected entries.
  EXPECT_THROW(make_model("wide-resnet", R"({"num_classes": 10, "depth": 22, "widen_factor": 2, "weights": ")" +
                                             fixture("reference/model/wrn_state.pt").string() + "\"}"),
               InvalidArgument);
  EXPECT_THROW(make_model("wide-resnet", R"({"num_classes": 10, "weights": "/nonexistent/w.pt"})"), FileError);
  // A name that is neither a file nor in the weights store: the loader names the file.
  EXPECT_THROW(make_model("wide-resnet", R"({"num_classes": 10, "weights": "cifar10-pt-typo"})"), FileError);
  EXPECT_THROW(make_model("wide-resnet", R"({"num_classes": 10, "depth": 15})"), InvalidArgument);
  EXPECT_THROW(make_model("wide-resnet", R"({"depth": 16})"), InvalidArgument);  // num_classes is required
  auto model = make_model("wide-resnet", R"({"num_classes": 3, "depth": 10, "widen_factor": 1})");
  at::NoGradGuard no_grad;
  EXPECT_THROW(model->logits(at::randn({2, 1, 32, 32})), ShapeError);
  EXPECT_THROW(model->logits(at::randn({3, 32, 32})), ShapeError);
  EXPECT_THROW(model->head(at::randn({2, 5})), ShapeError);
}

}  // namespace
}  // namespace ood::test
