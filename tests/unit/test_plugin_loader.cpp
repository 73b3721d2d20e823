// The plugin loader against deliberately broken libraries (tests/broken_plugins):
// each is refused with a message naming its file, and the others stay usable.
#include <gtest/gtest.h>

#include <cstdlib>

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
  EXPECT_NE(refusal("ood-duplicate.so").find("duplicate detector 'energy-based', already provided by"),
            std::string::npos)
      << refusal("ood-duplicate.so");
  EXPECT_NE(refusal("ood-duplicate.so").find("ood-energy-based.so"), std::string::npos);
  EXPECT_NE(refusal("ood-throwing-registration.so").find("registration failed: registration breaks halfway"),
            std::string::npos);
  EXPECT_NE(refusal("ood-not-a-library.so").find("not a readable shared library"), std::string::npos)
      << refusal("ood-not-a-library.so");
  for (const auto& r : load_all().report.refused)
    EXPECT_NE(r.reason.find(r.file.string()), std::string::npos) << "message must name the file: " << r.reason;
}

TEST(PluginLoader, TheRestStaysUsable) {
  const Registry& reg = load_all().registry;
  EXPECT_TRUE(reg.find(Kind::Detector, "energy-based"));
  EXPECT_TRUE(reg.find(Kind::Model, "wide-resnet"));
  EXPECT_TRUE(reg.find(Kind::Detector, "test-good"));
  EXPECT_FALSE(reg.find(Kind::Detector, "half-registered"));  // rolled back
  // The real energy-based stays the one from the real plugin.
  EXPECT_EQ(reg.find(Kind::Detector, "energy-based")->plugin_file.filename(), "ood-energy-based.so");
  const auto det = BuildContext(reg, 0).make_detector({"test-good", Params(), "/detectors/x"});
  ASSERT_TRUE(det);
  EXPECT_EQ(load_all().report.refused.size(), 7u);
}

TEST(PluginLoader, ThrowingFactoryGivesAnErrorNamingPluginAndPointer) {
  BuildContext ctx(load_all().registry, 0);
  try {
    ctx.make_detector({"throwing-factory", Params(), "/detectors/t"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "/detectors/t: detector 'throwing-factory' (ood-throwing-factory.so) failed: this factory always fails");
  }
}

TEST(PluginLoader, SearchPathsInOrderWithoutDuplicates) {
  ::setenv("OOD_PLUGIN_PATH", "/tmp/a-dir:/tmp/b-dir::/tmp/a-dir", 1);
  PluginSearchOptions o;
  o.extra_paths = {"/tmp/c-dir", "/tmp/c-dir/"};
  const auto paths = plugin_search_paths(o);
  ::setenv("OOD_PLUGIN_PATH", "", 1);
  ASSERT_GE(paths.size(), 3u);
  EXPECT_EQ(paths[0], "/tmp/c-dir");
  EXPECT_EQ(paths[1], "/tmp/a-dir");
  EXPECT_EQ(paths[2], "/tmp/b-dir");
  for (std::size_t i = 3; i < paths.size(); ++i) EXPECT_NE(paths[i], "/tmp/a-dir");
  // The build tree is searched when running from it.
  bool build_tree = false;
  for (const auto& p : paths) build_tree = build_tree || p.filename() == "plugins";
  EXPECT_TRUE(build_tree);
}

TEST(PluginLoader, FindsPluginFilesRecursivelyOnce) {
  const auto files = find_plugin_files({broken_dir(), broken_dir(), broken_dir() / "ood-test-good.so"});
  int good = 0;
  for (const auto& f : files) good += f.filename() == "ood-test-good.so";
  EXPECT_EQ(good, 1);
  EXPECT_EQ(files.size(), 9u);  // 8 libraries + the text file named like one
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
