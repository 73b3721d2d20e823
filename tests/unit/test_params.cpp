// Parameter schemas and their validation: every type, defaults, ranges, unknown and
// missing keys, nested components, and the pointers in the messages.
#include <gtest/gtest.h>

#include "ood/core/registry.hpp"
#include "ood/core/validation.hpp"
#include "ood/error.hpp"
#include "ood/params.hpp"

namespace ood::core {
namespace {

using json = nlohmann::ordered_json;

Registry make_registry() {
  Registry r;
  ComponentInfo all;
  all.kind = Kind::Detector;
  all.name = "all-types";
  all.params = {
      ParamSpec::integer("k", "neighbours").default_value(5).min(1).max(100),
      ParamSpec::real("t", "temperature").default_value(1.0).min(0.0, true),
      ParamSpec::boolean("flag", "a switch").default_value(false),
      ParamSpec::string("name", "free text").default_value("x"),
      ParamSpec::choice("variant", {"ash-p", "ash-b", "ash-s"}, "which").default_value("ash-p"),
      ParamSpec::list("shape", ParamType::Int, "a shape").default_value(std::vector<std::int64_t>{3, 32, 32}).items(3, 3).min(1),
      ParamSpec::list("weights", ParamType::Float, "floats").optional(),
      ParamSpec::path("file", "a file").optional(),
      ParamSpec::component("base", Kind::Dataset, "nested").optional(),
      ParamSpec::component_list("transforms", Kind::Augmentation, "nested list").default_json("[]"),
      ParamSpec::integer("required_n", "must be given"),
  };
  all.check = [](const Params& p) {
    if (p.get_int("k") == 13) throw InvalidArgument(p.pointer("k") + ": 13 is unlucky");
  };
  r.add_detector(all, [](const Params&, Context&) -> std::shared_ptr<Detector> { return nullptr; });
  ComponentInfo ds;
  ds.kind = Kind::Dataset;
  ds.name = "tiny";
  ds.params = {ParamSpec::integer("size", "n").default_value(3).min(1)};
  r.add_dataset(ds, [](const Params&, Context&) -> std::shared_ptr<Dataset> { return nullptr; });
  ComponentInfo aug;
  aug.kind = Kind::Augmentation;
  aug.name = "flip";
  r.add_augmentation(aug, [](const Params&, Context&) -> std::shared_ptr<Augmentation> { return nullptr; });
  return r;
}

struct Result {
  std::optional<json> value;
  std::vector<Diagnostic> diags;
};

Result validate(const Registry& r, const std::string& params) {
  SchemaValidator v(r);
  Result res;
  res.value = v.component(json{{"plugin", "all-types"}, {"params", json::parse(params)}}, Kind::Detector,
                          "/detectors/d", res.diags);
  return res;
}

std::string messages(const Result& r) {
  std::string s;
  for (const auto& d : r.diags) s += d.to_string() + "\n";
  return s;
}

TEST(Params, DefaultsAreFilledIn) {
  const Registry r = make_registry();
  const Result res = validate(r, R"({"required_n": 2})");
  ASSERT_TRUE(res.value) << messages(res);
  const json& p = (*res.value)["params"];
  EXPECT_EQ(p["k"], 5);
  EXPECT_EQ(p["t"], 1.0);
  EXPECT_EQ(p["flag"], false);
  EXPECT_EQ(p["variant"], "ash-p");
  EXPECT_EQ(p["shape"], json::parse("[3, 32, 32]"));
  EXPECT_FALSE(p.contains("weights"));  // optional, no default
  const Params params = Params::from_json_text(p.dump(), "/detectors/d/params");
  EXPECT_EQ(params.get_int("k"), 5);
  EXPECT_DOUBLE_EQ(params.get_float("t"), 1.0);
  EXPECT_EQ(params.get_int_list("shape"), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_FALSE(params.has("file"));
  EXPECT_EQ(params.pointer("k"), "/detectors/d/params/k");
  EXPECT_THROW(params.get_path("file"), InvalidArgument);
  EXPECT_THROW(params.get_string("k"), InvalidArgument);
}

TEST(Params, EveryTypeIsChecked) {
  const Registry r = make_registry();
  const Result res = validate(r, R"({"required_n": 1, "k": "5", "t": true, "flag": 1, "name": 3,
      "variant": "ash-x", "shape": [3, 32], "weights": [1, "a"], "file": "", "base": {"plugin": "tiny", "params": {"size": 0}},
      "transforms": [{"plugin": "flip"}, {"plugin": "flipp"}]})");
  EXPECT_FALSE(res.value);
  const std::string m = messages(res);
  EXPECT_NE(m.find("/detectors/d/params/k: expected integer in [1, 100], got \"5\""), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/t: expected number > 0, got true"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/flag: expected true or false, got 1"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/name: expected a string, got 3"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/variant: expected one of {ash-p, ash-b, ash-s}, got \"ash-x\" (did you mean"),
            std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/shape: expected list of int >= 1 (3 items), got 2 items"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/weights/1: expected number, got \"a\""), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/file: expected a non-empty path string"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/base/params/size: expected integer >= 1, got 0"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/transforms/1/plugin: unknown augmentation 'flipp' (did you mean 'flip'?)"),
            std::string::npos) << m;
  EXPECT_EQ(res.diags.size(), 10u) << m;
}

TEST(Params, RangesAreInclusiveOrExclusiveAsDeclared) {
  const Registry r = make_registry();
  EXPECT_TRUE(validate(r, R"({"required_n": 1, "k": 1})").value);
  EXPECT_TRUE(validate(r, R"({"required_n": 1, "k": 100})").value);
  EXPECT_FALSE(validate(r, R"({"required_n": 1, "k": 101})").value);
  EXPECT_FALSE(validate(r, R"({"required_n": 1, "t": 0.0})").value);
  EXPECT_TRUE(validate(r, R"({"required_n": 1, "t": 1e-9})").value);
  EXPECT_FALSE(validate(r, R"({"required_n": 1, "k": 2.5})").value);
}

TEST(Params, UnknownAndMissingKeys) {
  const Registry r = make_registry();
  const Result res = validate(r, R"({"kk": 3, "temprature": 2})");
  const std::string m = messages(res);
  EXPECT_NE(m.find("/detectors/d/params/kk: unknown parameter 'kk' for detector 'all-types' (did you mean 'k'?)"),
            std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params/temprature: unknown parameter"), std::string::npos) << m;
  EXPECT_NE(m.find("/detectors/d/params: missing required parameter 'required_n'"), std::string::npos) << m;
}

TEST(Params, ComponentShapeErrors) {
  const Registry r = make_registry();
  SchemaValidator v(r);
  std::vector<Diagnostic> diags;
  EXPECT_FALSE(v.component(json("tiny"), Kind::Dataset, "/data/in", diags));
  EXPECT_FALSE(v.component(json{{"params", json::object()}}, Kind::Dataset, "/data/in", diags));
  EXPECT_FALSE(v.component(json{{"plugin", "tiny"}, {"parmas", json::object()}}, Kind::Dataset, "/data/in", diags));
  EXPECT_FALSE(v.component(json{{"plugin", "all-types"}}, Kind::Dataset, "/data/in", diags));
  ASSERT_EQ(diags.size(), 4u);
  EXPECT_EQ(diags[0].pointer, "/data/in");
  EXPECT_NE(diags[1].message.find("missing \"plugin\""), std::string::npos);
  EXPECT_NE(diags[2].message.find("(did you mean 'params'?)"), std::string::npos) << diags[2].message;
  EXPECT_NE(diags[3].message.find("'all-types' is a detector, not a dataset"), std::string::npos) << diags[3].message;
}

TEST(Params, CrossParameterCheckReportsItsPointer) {
  const Registry r = make_registry();
  const Result res = validate(r, R"({"required_n": 1, "k": 13})");
  ASSERT_EQ(res.diags.size(), 1u);
  EXPECT_EQ(res.diags[0].pointer, "/detectors/d/params/k");
  EXPECT_EQ(res.diags[0].message, "13 is unlucky");
}

TEST(Params, TypeDescriptions) {
  EXPECT_EQ(ParamSpec::real("t", "").min(0.0, true).type_description(), "float > 0");
  EXPECT_EQ(ParamSpec::integer("k", "").min(1).max(9).type_description(), "int in [1, 9]");
  EXPECT_EQ(ParamSpec::choice("s", {"a", "b"}, "").type_description(), "enum {a, b}");
  EXPECT_EQ(ParamSpec::list("x", ParamType::Int, "").items(3, 3).type_description(), "list of int (3 items)");
  EXPECT_EQ(ParamSpec::component("d", Kind::Dataset, "").type_description(), "dataset component");
  EXPECT_THROW(ParamSpec::integer("k", "").default_json("{nope"), Error);
  EXPECT_THROW(ParamSpec::list("x", ParamType::Component, ""), Error);
}

TEST(Registry, RefusesBadDeclarations) {
  Registry r = make_registry();
  ComponentInfo bad;
  bad.kind = Kind::Detector;
  bad.name = "Bad_Name";
  EXPECT_THROW(r.add_detector(bad, nullptr), Error);
  bad.name = "all-types";
  EXPECT_THROW(r.add_detector(bad, nullptr), Error);  // duplicate
  bad.name = "ok-name";
  EXPECT_THROW(r.add_model(bad, nullptr), Error);  // kind mismatch
  bad.params = {ParamSpec::integer("a", ""), ParamSpec::real("a", "")};
  EXPECT_THROW(r.add_detector(bad, nullptr), Error);  // parameter twice
  EXPECT_EQ(r.names(Kind::Detector), (std::vector<std::string>{"all-types"}));
}

TEST(Registry, RollbackDropsAHalfRegisteredPlugin) {
  Registry r;
  r.begin_plugin("p", "/x/ood-p.so");
  ComponentInfo a;
  a.kind = Kind::Dataset;
  a.name = "a";
  r.add_dataset(a, nullptr);
  r.rollback_plugin();
  EXPECT_TRUE(r.list().empty());
  r.begin_plugin("p", "/x/ood-p.so");
  r.add_dataset(a, nullptr);
  r.commit_plugin();
  ASSERT_EQ(r.list().size(), 1u);
  EXPECT_EQ(r.list()[0]->plugin_file, "/x/ood-p.so");
}

}  // namespace
}  // namespace ood::core
