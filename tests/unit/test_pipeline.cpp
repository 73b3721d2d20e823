// Pipeline descriptions against the real plugins: valid ones, every mistake reported
// with its pointer, overrides, syntax errors.
#include <gtest/gtest.h>

#include "ood/core/pipeline.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

using json = nlohmann::ordered_json;

const char* kIssueExample = R"({"model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": 16,
           "widen_factor": 2, "weights": "ref/wrn_state.pt"}},
 "data": {"in":  {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_in",  "labels": "y_in"}},
          "out": {"noise": {"plugin": "tensor-file", "params": {"path": "ref/data.pt", "inputs": "x_out", "labels": "y_out"}}}},
 "detectors": {"msp": {"plugin": "max-softmax"}, "energy": {"plugin": "energy-based"}},
 "evaluate": {"batch_size": 32, "save_scores": true}})";

std::vector<Diagnostic> diagnostics_of(const json& doc) {
  try {
    parse_pipeline(doc, test::registry(), "p.json");
  } catch (const PipelineError& e) {
    return e.diagnostics();
  }
  return {};
}

TEST(Pipeline, IssueExampleIsValidAndKeepsOrder) {
  const Pipeline p = parse_pipeline(parse_pipeline_text(kIssueExample, "x"), test::registry(), "x");
  ASSERT_EQ(p.detectors.size(), 2u);
  EXPECT_EQ(p.detectors[0].name, "msp");  // document order, not alphabetical
  EXPECT_EQ(p.detectors[1].name, "energy");
  EXPECT_EQ(p.detectors[0].spec.params.get_float("t"), 1.0);  // default filled in
  EXPECT_EQ(p.evaluate.batch_size, 32);
  EXPECT_TRUE(p.evaluate.save_scores);
  EXPECT_EQ(p.evaluate.workers, 2);
  ASSERT_EQ(p.out_data.size(), 1u);
  EXPECT_EQ(p.out_data[0].first, "noise");
  EXPECT_EQ(p.out_data[0].second.pointer, "/data/out/noise");
  EXPECT_EQ(p.model->params.get_int("depth"), 16);
  EXPECT_EQ(p.normalized["detectors"]["msp"]["params"]["t"], 1.0);
}

TEST(Pipeline, ThreeMistakesThreePointers) {
  json doc = parse_pipeline_text(kIssueExample, "x");
  doc["detectors"]["msp"]["params"]["t"] = "1";              // wrong type
  doc["detectors"]["energy"]["plugin"] = "energy-base";      // typo
  doc["evaluate"]["batch_sise"] = 64;                        // unknown key
  const auto diags = diagnostics_of(doc);
  ASSERT_EQ(diags.size(), 3u);
  EXPECT_EQ(diags[0].to_string(), "/detectors/msp/params/t: expected number > 0, got \"1\"");
  EXPECT_EQ(diags[1].to_string(), "/detectors/energy/plugin: unknown detector 'energy-base' (did you mean 'energy-based'?)");
  EXPECT_EQ(diags[2].to_string(),
            "/evaluate/batch_sise: unknown parameter 'batch_sise' for section 'evaluate' (did you mean 'batch_size'?)");
}

TEST(Pipeline, StructuralMistakes) {
  auto has = [](const std::vector<Diagnostic>& d, const std::string& text) {
    for (const auto& x : d)
      if (x.to_string().find(text) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has(diagnostics_of(json::array()), "a pipeline is a JSON object"));
  EXPECT_TRUE(has(diagnostics_of(json::object()), "nothing to do"));
  json doc = parse_pipeline_text(kIssueExample, "x");
  doc["detektors"] = doc["detectors"];
  auto d = diagnostics_of(doc);
  EXPECT_TRUE(has(d, "/detektors: unknown section 'detektors' (did you mean 'detectors'?)"));

  doc = parse_pipeline_text(kIssueExample, "x");
  doc.erase("model");
  doc["data"].erase("in");
  d = diagnostics_of(doc);
  EXPECT_TRUE(has(d, "detectors need a model"));
  EXPECT_TRUE(has(d, "/data: detectors need in-distribution data"));

  doc = parse_pipeline_text(kIssueExample, "x");
  doc["detectors"]["msp"]["fit"] = "fit";
  doc["detectors"]["bad/name"] = json{{"plugin", "entropy"}};
  doc["detectors"]["energy"]["save"] = "x.pt";
  doc["data"]["out"]["_meta"] = json{{"plugin", "gaussian-noise"}};
  d = diagnostics_of(doc);
  EXPECT_TRUE(has(d, "/detectors/msp/fit: refers to /data/fit, which the pipeline does not define"));
  EXPECT_TRUE(has(d, "/detectors/bad~1name: invalid detector name"));
  EXPECT_TRUE(has(d, "/detectors/energy/save: unknown key 'save' in a detector (did you mean 'save_state'?)"));
  EXPECT_TRUE(has(d, "/data/out/_meta: invalid OOD set name"));

  doc = parse_pipeline_text(kIssueExample, "x");
  doc["device"] = "tpu";
  doc["seed"] = -1;
  doc["train"] = json{{"data", {{"plugin", "gaussian-noise"}}}, {"epochs", 0}, {"schedule", "cosin"}};
  d = diagnostics_of(doc);
  EXPECT_TRUE(has(d, "/device: expected cpu, cuda or cuda:N"));
  EXPECT_TRUE(has(d, "/seed: expected integer >= 0, got -1"));
  EXPECT_TRUE(has(d, "/train/epochs: expected integer >= 1, got 0"));
  EXPECT_TRUE(has(d, "/train/schedule: expected one of {cosine, step, constant}, got \"cosin\" (did you mean 'cosine'?)"));
}

TEST(Pipeline, ErrorMessageListsEveryDiagnostic) {
  json doc = parse_pipeline_text(kIssueExample, "x");
  doc["evaluate"]["batch_size"] = 0;
  doc["evaluate"]["workers"] = -1;
  try {
    parse_pipeline(doc, test::registry(), "p.json");
    FAIL();
  } catch (const PipelineError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("p.json: invalid pipeline (2 errors)", 0), 0u) << what;
    EXPECT_NE(what.find("\n  /evaluate/batch_size: expected integer >= 1, got 0"), std::string::npos) << what;
  }
}

TEST(Pipeline, Overrides) {
  json doc = parse_pipeline_text(kIssueExample, "x");
  apply_override(doc, "evaluate.batch_size=64");
  apply_override(doc, "/detectors/msp/params/t=2.5");
  apply_override(doc, "data.out.noise.params.inputs=x_in");  // a bare word is a string
  apply_override(doc, "train.transforms=[]");
  apply_override(doc, "/detectors/a~1b=1");
  EXPECT_EQ(doc["evaluate"]["batch_size"], 64);
  EXPECT_EQ(doc["detectors"]["msp"]["params"]["t"], 2.5);
  EXPECT_EQ(doc["data"]["out"]["noise"]["params"]["inputs"], "x_in");
  EXPECT_TRUE(doc["train"]["transforms"].is_array());
  EXPECT_EQ(doc["detectors"]["a/b"], 1);
  json list = json{{"xs", {1, 2, 3}}};
  apply_override(list, "xs.1=7");
  EXPECT_EQ(list["xs"][1], 7);
  EXPECT_THROW(apply_override(list, "xs.9=7"), InvalidArgument);
  EXPECT_THROW(apply_override(list, "xs.a=7"), InvalidArgument);
  EXPECT_THROW(apply_override(list, "noequals"), InvalidArgument);
  EXPECT_THROW(apply_override(list, "=3"), InvalidArgument);
  EXPECT_THROW(apply_override(list, "xs.1.deeper=3"), InvalidArgument);
  EXPECT_THROW(apply_override(list, "a..b=3"), InvalidArgument);
}

TEST(Pipeline, SyntaxErrorsNameLineAndColumn) {
  try {
    parse_pipeline_text("{\n  \"seed\": 1,\n  \"model\": {\"plugin\" \"x\"}\n}", "bad.json");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad.json:3:", 0), 0u) << e.what();
  }
  // Comments are allowed in pipeline files.
  EXPECT_NO_THROW(parse_pipeline_text("{\"seed\": 1 /* fixed */}", "c.json"));
  EXPECT_THROW(read_pipeline_file("/nonexistent/pipeline.json"), InvalidArgument);
}

// {"preset": NAME} stands for the evaluation transforms of a weight set, in place, and is
// validated like transforms written by hand.
TEST(Pipeline, TransformPresetsExpandInPlace) {
  json doc = parse_pipeline_text(kIssueExample, "x");
  doc["data"]["transforms"] = json{{"preset", "resnet50-imagenet1k-v2"}};
  Pipeline p = parse_pipeline(doc, test::registry(), "x");
  ASSERT_EQ(p.transforms.size(), 3u);
  EXPECT_EQ(p.transforms[0].plugin, "resize");
  EXPECT_EQ(p.transforms[0].params.get_int("shorter_side"), 232);
  EXPECT_EQ(p.transforms[1].plugin, "center-crop");
  EXPECT_EQ(p.transforms[1].params.get_int_list("size"), std::vector<std::int64_t>{224});
  EXPECT_EQ(p.transforms[2].plugin, "normalize");
  EXPECT_EQ(p.transforms[2].params.get_float_list("std")[2], 0.225);
  // the normalised document records what the preset stood for
  EXPECT_EQ(p.normalized["data"]["transforms"].size(), 3u);

  // an item of a list, among other transforms; pytorch-ood's CIFAR preset has ToRGB
  doc["data"]["transforms"] = json::parse(R"([{"plugin": "to-rgb"}, {"preset": "cifar10-pt"},
                                              {"plugin": "random-horizontal-flip"}])");
  p = parse_pipeline(doc, test::registry(), "x");
  std::vector<std::string> names;
  for (const auto& t : p.transforms) names.push_back(t.plugin);
  EXPECT_EQ(names, (std::vector<std::string>{"to-rgb", "resize", "to-rgb", "normalize", "random-horizontal-flip"}));
  EXPECT_EQ(p.transforms[1].params.get_int_list("size"), (std::vector<std::int64_t>{32, 32}));

  // train transforms take presets too
  doc["train"] = json::parse(R"({"data": {"plugin": "tensor-file", "params": {"path": "a.pt"}},
                                 "transforms": {"preset": "cifar100-pt"}})");
  p = parse_pipeline(doc, test::registry(), "x");
  ASSERT_TRUE(p.train.has_value());
  EXPECT_EQ(p.train->transforms.size(), 3u);
}

TEST(Pipeline, TransformPresetMistakesHavePointers) {
  json doc = parse_pipeline_text(kIssueExample, "x");
  doc["data"]["transforms"] = json{{"preset", "resnet50-imagenet1k-v3"}};
  auto d = diagnostics_of(doc);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].pointer, "/data/transforms/preset");
  EXPECT_NE(d[0].message.find("unknown preset 'resnet50-imagenet1k-v3'"), std::string::npos) << d[0].message;
  EXPECT_NE(d[0].message.find("did you mean"), std::string::npos) << d[0].message;

  doc["data"]["transforms"] = json::parse(R"([{"plugin": "to-rgb"}, {"preset": 3}])");
  d = diagnostics_of(doc);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].pointer, "/data/transforms/1/preset");

  doc["data"]["transforms"] = json::parse(R"({"preset": "cifar10-pt", "size": 3})");
  d = diagnostics_of(doc);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].pointer, "/data/transforms/size");
}

}  // namespace
}  // namespace ood::core
