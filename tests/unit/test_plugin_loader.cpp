// The plugin loader against deliberately broken libraries (tests/broken_plugins):
// each is refused with a message naming its file, and the others stay usable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "ood/core/build_context.hpp"
#include "ood/core/plugin_loader.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

namespace fs = std::filesystem;

fs::path broken_dir() {
  const char* d = std::getenv("OOD_BROKEN_PLUGIN_DIR");
  if (!d) throw std::runtime_error("OOD_BROKEN_PLUGIN_DIR is not set (run through meson test)");
  return d;
}

struct Loaded {
  Registry registry;
  PluginLoadReport report;
};

// The build tree's real plugins first, then the broken ones.
Loaded& load_all() {
  static Loaded* l = [] {
    auto* x = new Loaded();
    PluginSearchOptions options;
    options.use_environment = false;
    auto paths = plugin_search_paths(options);
    paths.push_back(broken_dir());
    x->report = load_plugins(paths, x->registry);
    return x;
  }();
  return *l;
}

std::string refusal(const std::string& file) {
  for (const auto& r : load_all().report.refused)
    if (r.file.filename() == file) return r.reason;
  return "";
}

TEST(PluginLoader, WrongAbiIsRefusedByName) {
  const std::string r = refusal("ood-wrong-abi.so");
  EXPECT_EQ(r, "Wrong ABI version in plugin '" + (broken_dir() / "ood-wrong-abi.so").string() + "': got " +
                   std::to_string(OOD_PLUGIN_ABI_VERSION + 1) + ", this host is " +
                   std::to_string(OOD_PLUGIN_ABI_VERSION));
}

TEST(PluginLoader, OtherRefusals) {
  EXPECT_NE(refusal("ood-wrong-torch.so").find("Wrong LibTorch version"), std::string::npos);
  EXPECT_NE(refusal("ood-wrong-torch.so").find("built with 0.4.1, this host uses " TORCH_VERSION), std::string::npos);
  EXPECT_NE(refusal("ood-no-entry.so").find("missing entry point 'ood_plugin'"), std::string::npos)
      << refusal("ood-no-entry.so");
  EXPECT_NE(refusal("ood-name-mismatch.so").find("calls itself 'another-name' but the file name says 'name-mismatch'"),
            std::string::npos)
      << refusal("ood-name-mismatch.so");
  // Same version string, another build of LibTorch.
  EXPECT_EQ(refusal("ood-wrong-torch-build.so"),
            "Wrong LibTorch build in plugin '" + (broken_dir() / "ood-wrong-torch-build.so").string() +
                "': built with '" TORCH_VERSION "+cuda-other cxx11_abi=1', this host uses '" OOD_TORCH_BUILD_STRING "'");
  // A name another file provides is not a refusal but a conflict (see below).
  EXPECT_EQ(refusal("ood-duplicate.so"), "");
  EXPECT_NE(refusal("ood-throwing-registration.so").find("registration failed: registration breaks halfway"),
            std::string::npos);
  EXPECT_NE(refusal("ood-not-a-library.so").find("not a readable shared library"), std::string::npos)
      << refusal("ood-not-a-library.so");
  for (const auto& r : load_all().report.refused)
    EXPECT_NE(r.reason.find(r.file.string()), std::string::npos) << "message must name the file: " << r.reason;
}

TEST(PluginLoader, TheRestStaysUsable) {
  const Registry& reg = load_all().registry;
  EXPECT_TRUE(reg.find(Kind::Model, "wide-resnet"));
  EXPECT_TRUE(reg.find(Kind::Detector, "test-good"));
  EXPECT_FALSE(reg.find(Kind::Detector, "half-registered"));  // rolled back
  const auto det = BuildContext(reg, 0).make_detector({"test-good", Params(), "/detectors/x"});
  ASSERT_TRUE(det);
  EXPECT_EQ(load_all().report.refused.size(), 7u);
}

TEST(PluginLoader, ANameTwoFilesProvideIsAConflictNotAWinner) {
  const Registry& reg = load_all().registry;
  // Neither the real energy-based nor the one of ood-duplicate.so wins silently.
  EXPECT_EQ(reg.find(Kind::Detector, "energy-based"), nullptr);
  const auto providers = reg.providers(Kind::Detector, "energy-based");
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0]->plugin_file.filename(), "ood-energy-based.so");
  EXPECT_EQ(providers[1]->plugin_file.filename(), "ood-duplicate.so");
  bool reported = false;
  for (const auto& c : reg.conflicts())
    if (c.name == "energy-based") {
      reported = true;
      EXPECT_EQ(c.message(), "detector 'energy-based' is provided by 2 plugin files: " +
                                 providers[0]->plugin_file.string() + " and " + (broken_dir() / "ood-duplicate.so").string());
    }
  EXPECT_TRUE(reported);
  // The rest of ood-duplicate.so's file and of the real plugins is unaffected.
  EXPECT_TRUE(reg.find(Kind::Detector, "max-softmax"));
}

TEST(PluginLoader, PreferChoosesOneFileExplicitly) {
  Registry reg;
  PluginLoadReport report;
  for (const auto& f : find_plugin_files({broken_dir() / "ood-duplicate.so"})) load_plugin_file(f, reg, report);
  PluginSearchOptions options;
  options.use_environment = false;
  for (const auto& f : find_plugin_files(plugin_search_paths(options)))
    if (f.filename() == "ood-energy-based.so") load_plugin_file(f, reg, report);
  EXPECT_EQ(reg.find(Kind::Detector, "energy-based"), nullptr);
  EXPECT_THROW(reg.prefer("energy-based", broken_dir() / "ood-test-good.so"), InvalidArgument);
  reg.prefer("detector/energy-based", broken_dir() / "ood-duplicate.so");
  ASSERT_TRUE(reg.find(Kind::Detector, "energy-based"));
  EXPECT_EQ(reg.find(Kind::Detector, "energy-based")->plugin_file, broken_dir() / "ood-duplicate.so");
  ASSERT_EQ(reg.overrides().size(), 1u);
  EXPECT_EQ(reg.overrides()[0].files.size(), 2u);
}

TEST(PluginLoader, ThrowingFactoryIsThePluginsBugNamingItsFile) {
  BuildContext ctx(load_all().registry, 0);
  try {
    ctx.make_detector({"throwing-factory", Params(), "/detectors/t"});
    FAIL();
  } catch (const InvalidArgument& e) {
    FAIL() << "a plugin's bug must not read as the user's mistake: " << e.what();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "/detectors/t: detector 'throwing-factory' (ood-throwing-factory.so): its factory failed: this factory "
              "always fails (a bug in plugin " +
                  (broken_dir() / "ood-throwing-factory.so").string() +
                  ", not in the pipeline: factories report problems as ood::Error)");
  }
}

TEST(PluginLoader, ReadingAnUndeclaredParameterIsThePluginsBug) {
  BuildContext ctx(load_all().registry, 0);
  try {
    ctx.make_detector({"test-undeclared-param", Params::from_json_text(R"({"t": 1.0})", "/detectors/u/params"),
                       "/detectors/u"});
    FAIL();
  } catch (const InvalidArgument& e) {
    FAIL() << "a plugin's bug must not read as the user's mistake: " << e.what();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "/detectors/u/params/temperature: the plugin reads parameter 'temperature', which its schema does not "
              "declare (a bug in detector 'test-undeclared-param' of plugin " +
                  (broken_dir() / "ood-test-good.so").string() + ", not in the pipeline)");
  }
  // Without a schema (Params built by hand) it stays the old InvalidArgument.
  EXPECT_THROW(Params::from_json_text("{}", "/p").get_float("x"), InvalidArgument);
}

// Only the entry alias may be exported: anything else could interpose the host's or
// another plugin's symbols (and the docs promise it).
TEST(PluginLoader, EveryPluginExportsOnlyItsEntryPoint) {
  PluginSearchOptions options;
  options.use_environment = false;
  const auto files = find_plugin_files(plugin_search_paths(options));
  ASSERT_GT(files.size(), 20u);
  for (const auto& file : files) {
    const auto r = test::run_command("nm -D --defined-only '" + file.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> symbols;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      const auto space = line.rfind(' ');
      if (space != std::string::npos) symbols.push_back(line.substr(space + 1));
    }
    EXPECT_EQ(symbols, std::vector<std::string>{"ood_plugin"}) << file << " exports:\n" << r.output;
  }
}

TEST(PluginLoader, SearchPathsInOrderWithoutDuplicates) {
  const fs::path c = test::temp_dir("c-dir");
  ::setenv("OOD_PLUGIN_PATH", "/tmp/a-dir:/tmp/b-dir::/tmp/a-dir", 1);
  PluginSearchOptions o;
  o.extra_paths = {c, c.string() + "/"};
  const auto paths = plugin_search_paths(o);
  ::setenv("OOD_PLUGIN_PATH", "", 1);
  ASSERT_GE(paths.size(), 3u);
  EXPECT_EQ(paths[0], fs::weakly_canonical(c));
  EXPECT_EQ(paths[1], "/tmp/a-dir");
  EXPECT_EQ(paths[2], "/tmp/b-dir");
  for (std::size_t i = 3; i < paths.size(); ++i) EXPECT_NE(paths[i], "/tmp/a-dir");
  // The build tree is searched when running from it.
  bool build_tree = false;
  for (const auto& p : paths) build_tree = build_tree || p.filename() == "plugins";
  EXPECT_TRUE(build_tree);
}

TEST(PluginLoader, AMissingExtraPathIsAnErrorNamingIt) {
  PluginSearchOptions o;
  o.extra_paths = {"/no/such/plugin-dir"};
  try {
    plugin_search_paths(o);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()), "--plugin-path /no/such/plugin-dir: no such file or directory");
  }
}

TEST(PluginLoader, FindsPluginFilesRecursivelyOnce) {
  const auto files = find_plugin_files({broken_dir(), broken_dir(), broken_dir() / "ood-test-good.so"});
  int good = 0;
  for (const auto& f : files) good += f.filename() == "ood-test-good.so";
  EXPECT_EQ(good, 1);
  EXPECT_EQ(files.size(), 10u);  // 9 libraries + the text file named like one
}

TEST(PluginLoader, LoadingTheSameFileTwiceReportsDuplicates) {
  Registry reg;
  PluginLoadReport report;
  load_plugin_file(broken_dir() / "ood-test-good.so", reg, report);
  load_plugin_file(broken_dir() / "ood-test-good.so", reg, report);
  EXPECT_EQ(report.loaded.size(), 1u);
  ASSERT_EQ(report.refused.size(), 1u);
  EXPECT_NE(report.refused[0].reason.find("duplicate detector 'test-good'"), std::string::npos);
}

}  // namespace
}  // namespace ood::core
