// The plugin test kit (ood/testkit.hpp) against the build tree's plugins, and
// Params::from_json_text with a schema (defaults filled in without the host).
// tests/sdk/test_sdk_install.sh uses the installed kit from out-of-tree projects.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "ood/testkit.hpp"

namespace {

namespace fs = std::filesystem;
namespace tk = ood::testkit;

fs::path env_path(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw std::runtime_error(std::string(name) + " is not set (run through meson test)");
  return v;
}

// The build tree's plugins, <build>/plugins/<kind>s/<name>/ood-<name>.so (OOD_BINARY is <build>/host/ood).
fs::path plugin_file(const std::string& kind_dir, const std::string& name) {
  return env_path("OOD_BINARY").parent_path().parent_path() / "plugins" / kind_dir / name / ("ood-" + name + ".so");
}

TEST(Testkit, LoadsOnePluginFileAndListsItsComponents) {
  tk::Plugins plugins(plugin_file("detectors", "energy-based"));
  const auto components = plugins.components();
  ASSERT_EQ(components.size(), 1u);
  EXPECT_EQ(components[0].kind, ood::Kind::Detector);
  EXPECT_EQ(components[0].name, "energy-based");
  EXPECT_EQ(components[0].plugin, "energy-based");
  EXPECT_EQ(components[0].plugin_file.filename(), "ood-energy-based.so");
  EXPECT_EQ(plugins.info(ood::Kind::Detector, "energy-based").params.at(0).name(), "t");
  // Only what was asked for is loaded: no built-in model.
  EXPECT_THROW(plugins.info(ood::Kind::Model, "wide-resnet"), ood::InvalidArgument);
}

TEST(Testkit, FillsDefaultsAndValidatesLikeAPipeline) {
  tk::Plugins plugins(plugin_file("detectors", "energy-based"));
  EXPECT_EQ(plugins.params(ood::Kind::Detector, "energy-based").get_float("t"), 1.0);
  EXPECT_EQ(plugins.validated_params(ood::Kind::Detector, "energy-based", R"({"t": 2.5})"), R"({"t":2.5})");
  const std::string message = tk::check_throws<ood::InvalidArgument>(
      [&] { plugins.make_detector("energy-based", R"({"t": 0, "tt": 1})"); });
  EXPECT_NE(message.find("/test/params/t: expected number > 0, got 0"), std::string::npos) << message;
  EXPECT_NE(message.find("/test/params/tt: unknown parameter 'tt'"), std::string::npos) << message;
  tk::check_throws<ood::InvalidArgument>([&] { plugins.make_detector("energy-based", "{"); }, "not valid JSON");
  tk::check_throws<ood::InvalidArgument>([&] { plugins.make_detector("max-softmax"); }, "max-softmax");
}

TEST(Testkit, ScoresADetectorOnGivenLogitsAndThroughAModel) {
  tk::Plugins plugins(plugin_file("detectors", "energy-based"));
  auto detector = plugins.make_detector("energy-based", R"({"t": 2})");
  const at::Tensor logits = at::tensor({1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f}).view({2, 3});
  const at::Tensor scores = tk::score_logits(*detector, logits);
  tk::check_scores(scores, 2);
  tk::check_close(scores, -2 * at::logsumexp(logits / 2, 1));
  // A view the detector needs but was not given: the SDK's StateError.
  EXPECT_THROW(tk::score_features(*detector, at::zeros({2, 4})), ood::StateError);

  auto model = tk::LinearModel::random(3, 4, /*seed=*/5);
  const at::Tensor x = at::randn({7, 4});
  detector->attach(*model);
  tk::check_close(tk::score_on_model(*detector, *model, x, /*batch_size=*/3),
                  -2 * at::logsumexp(model->head(x).detach() / 2, 1), 1e-5, 1e-5);
}

TEST(Testkit, LinearModelHasTheViewsDetectorsNeed) {
  auto model = tk::LinearModel::random(3, 4, 1);
  EXPECT_EQ(model->info().num_classes, 3);
  EXPECT_EQ(model->info().feature_dim, 4);
  ASSERT_TRUE(model->linear_head().has_value());
  const at::Tensor x = at::randn({2, 4});
  tk::check_close(model->logits(x), at::linear(x, model->linear_head()->weight, model->linear_head()->bias));
  EXPECT_THROW(model->features(at::zeros({2, 5})), ood::ShapeError);
  auto copy = tk::LinearModel::random(3, 4, 2);
  copy->load_state_dict(model->state_dict());
  tk::check_close(copy->logits(x), model->logits(x), 0, 0);
  // The same seed, the same weights.
  tk::check_close(tk::LinearModel::random(3, 4, 1)->logits(x), model->logits(x), 0, 0);
}

TEST(Testkit, BuildsEveryKindAndChecksDatasetsAndAugmentations) {
  tk::Plugins plugins({plugin_file("datasets", "gaussian-noise"), plugin_file("augmentations", "normalize"),
                       plugin_file("losses", "cross-entropy"), plugin_file("models", "wide-resnet")});
  EXPECT_EQ(plugins.components().size(), 4u);
  auto dataset = plugins.make_dataset("gaussian-noise", R"({"size": 5})");
  tk::check_dataset(*dataset);
  auto normalize = plugins.make_augmentation("normalize", R"({"mean": [0.5], "std": [0.5]})");
  const ood::Sample s = tk::apply(*normalize, ood::Sample{at::ones({1, 2, 2}), at::scalar_tensor(0, at::kLong)});
  tk::check_close(s.input, at::ones({1, 2, 2}));
  auto loss = plugins.make_loss("cross-entropy");
  const at::Tensor logits = at::tensor({2.0f, 0.0f, 0.0f, 1.0f}).view({2, 2});
  const at::Tensor targets = at::tensor({0, 1}, at::kLong);
  tk::check_close(tk::loss_value(*loss, logits, {}, targets), at::cross_entropy_loss(logits, targets));
  auto model = plugins.make_model("wide-resnet", R"({"num_classes": 3, "depth": 10, "widen_factor": 1})");
  EXPECT_EQ(model->info().num_classes, 3);
}

TEST(Testkit, RefusesMissingPathsAndBrokenPluginsNamingThem) {
  const std::string missing = tk::check_throws<ood::Error>([] { tk::Plugins p("/nonexistent/ood-x.so"); });
  EXPECT_NE(missing.find("/nonexistent/ood-x.so: no such plugin file or directory"), std::string::npos);
  const fs::path empty = fs::temp_directory_path() / ("ood-testkit-empty-" + std::to_string(::getpid()));
  fs::create_directories(empty);
  tk::check_throws<ood::Error>([&] { tk::Plugins p(empty); }, "no plugin file in it");
  fs::remove_all(empty);
  const fs::path broken = env_path("OOD_BROKEN_PLUGIN_DIR") / "ood-wrong-abi.so";
  const std::string message = tk::check_throws<ood::Error>([&] { tk::Plugins p(broken); }, "ood-wrong-abi.so");
  EXPECT_NE(message.find("ABI"), std::string::npos) << message;
}

TEST(Testkit, ChecksReportWhatDiffers) {
  const std::string shape =
      tk::check_throws<tk::Failure>([] { tk::check_close(at::zeros({2}), at::zeros({3}), 0, 0, "scores"); });
  EXPECT_NE(shape.find("scores: shape [2], expected [3]"), std::string::npos) << shape;
  const std::string value = tk::check_throws<tk::Failure>(
      [] { tk::check_close(at::tensor({1.0f, 2.0f}), at::tensor({1.0f, 2.5f}), 0, 0.1); });
  EXPECT_NE(value.find("element 1 is 2, expected 2.5"), std::string::npos) << value;
  tk::check_close(at::tensor({NAN, 1.0f}), at::tensor({NAN, 1.0f}), 0, 0);  // NaN where expected

  tk::check_throws<tk::Failure>([] { tk::check_scores(at::zeros({2}, at::kLong), 2); }, "floating");
  tk::check_throws<tk::Failure>([] { tk::check_scores(at::zeros({2, 1}), 2); }, "expected shape [2]");
  tk::check_throws<tk::Failure>([] { tk::check_scores(at::tensor({INFINITY}), 1); }, "not all finite");
  tk::check_scores(at::tensor({INFINITY}), 1, /*allow_nonfinite=*/true);

  // check_throws itself: nothing thrown, another type, another message.
  EXPECT_THROW(tk::check_throws<ood::Error>([] {}), tk::Failure);
  EXPECT_THROW(tk::check_throws<ood::ShapeError>([] { throw ood::StateError("x"); }), tk::Failure);
  EXPECT_THROW(tk::check_throws<ood::Error>([] { throw ood::Error("abc"); }, "xyz"), tk::Failure);
}

TEST(Testkit, SuiteRunsCasesAndReturnsTheExitCode) {
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  tk::Suite good("good");
  good.add("passes", [] {});
  const int ok = good.run();
  tk::Suite bad("bad");
  bad.add("passes", [] {}).add("fails", [] { tk::fail("on purpose"); });
  const int failed = bad.run();
  char arg0[] = "t", filter[] = "--filter=passes";
  char* argv[] = {arg0, filter};
  const int filtered = bad.run(2, argv);
  std::cout.rdbuf(old);
  EXPECT_EQ(ok, 0);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(filtered, 0);
  EXPECT_NE(captured.str().find("FAIL bad: fails: on purpose"), std::string::npos) << captured.str();
  EXPECT_NE(captured.str().find("bad: 1 passed, 1 failed"), std::string::npos) << captured.str();
}

TEST(Testkit, InstalledPluginsDirIsBesideTheLibrary) {
  const fs::path dir = tk::installed_plugins_dir();
  EXPECT_EQ(dir.filename(), "plugins");
  EXPECT_EQ(dir.parent_path().filename(), "ood");
}

// ---------------------------------------------------------------- Params with a schema

std::vector<ood::ParamSpec> specs() {
  return {ood::ParamSpec::real("t", "temperature").default_value(1.5),
          ood::ParamSpec::integer("k", "neighbours"),
          ood::ParamSpec::string("name", "optional").optional(),
          ood::ParamSpec::list("dims", ood::ParamType::Int, "dims").default_value(std::vector<std::int64_t>{1, 2})};
}

TEST(ParamsWithSchema, FillsDefaults) {
  const auto p = ood::Params::from_json_text(R"({"k": 3, "t": null, "name": null})", "/d/params", specs());
  EXPECT_EQ(p.get_float("t"), 1.5);
  EXPECT_EQ(p.get_int("k"), 3);
  EXPECT_FALSE(p.has("name"));
  EXPECT_EQ(p.get_int_list("dims"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(p.pointer("t"), "/d/params/t");
  EXPECT_EQ(ood::Params::from_json_text(R"({"k": 1, "t": 4})", "/d", specs()).get_float("t"), 4.0);
}

TEST(ParamsWithSchema, RefusesUnknownAndMissingRequired) {
  try {
    ood::Params::from_json_text(R"({"k": 1, "kk": 2})", "/d/params", specs());
    FAIL() << "no error";
  } catch (const ood::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "/d/params/kk: unknown parameter 'kk'; it takes: t, k, name, dims");
  }
  try {
    ood::Params::from_json_text("{}", "/d/params", specs());
    FAIL() << "no error";
  } catch (const ood::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "/d/params/k: missing required parameter 'k' (int)");
  }
  EXPECT_THROW(ood::Params::from_json_text("[]", "/d", specs()), ood::InvalidArgument);
  EXPECT_THROW(ood::Params::from_json_text("{", "/d", specs()), ood::InvalidArgument);
}

}  // namespace
