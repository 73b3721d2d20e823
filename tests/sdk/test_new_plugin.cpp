// `ood new-plugin`: what it writes and what it refuses. Building the generated
// projects against an installed SDK is tests/sdk/test_sdk_install.sh's job (slow).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string output;
};

// Runs the build tree's `ood ARGS` in `dir`, stdout and stderr together.
Result ood(const std::string& args, const fs::path& dir) {
  const char* binary = std::getenv("OOD_BINARY");
  if (!binary) throw std::runtime_error("OOD_BINARY is not set (run through meson test)");
  Result r{-1, ""};
  FILE* pipe = ::popen(("cd '" + dir.string() + "' && '" + binary + "' " + args + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// One directory per program under $TMPDIR, removed when the program ends.
struct ScratchRoot {
  fs::path path = fs::temp_directory_path() / ("ood-new-plugin-" + std::to_string(::getpid()));
  ~ScratchRoot() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

fs::path scratch(const std::string& name) {
  static ScratchRoot root;
  const fs::path dir = root.path / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(NewPlugin, WritesAProjectForEveryKind) {
  const fs::path dir = scratch("kinds");
  for (const std::string kind : {"detector", "loss", "dataset", "augmentation", "model"}) {
    const std::string name = "my-" + kind;
    const std::string file = "my_" + kind;
    const auto r = ood("new-plugin " + name + " --kind " + kind, dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "meson setup my-" + kind + "/build my-" + kind)) << r.output;
    const fs::path project = dir / name;
    for (const std::string& f : std::vector<std::string>{"meson.build", file + ".cpp", "test_" + file + ".cpp",
                                                           "pipeline.json", "README.md", ".gitignore"})
      EXPECT_TRUE(fs::is_regular_file(project / f)) << project / f;
    const std::string meson = read(project / "meson.build");
    EXPECT_TRUE(contains(meson, "dependency('ood-sdk')")) << meson;
    EXPECT_TRUE(contains(meson, "shared_module('ood-" + name + "', '" + file + ".cpp'")) << meson;
    EXPECT_TRUE(contains(meson, "get_variable(pkgconfig: 'pluginsdir')")) << meson;
    EXPECT_TRUE(contains(meson, "dependency('ood-testkit')")) << meson;
    const std::string source = read(project / (file + ".cpp"));
    EXPECT_TRUE(contains(source, "OOD_PLUGIN(\"" + name + "\"")) << source;
    EXPECT_TRUE(contains(source, "info.kind = ood::Kind::")) << source;
    EXPECT_TRUE(contains(source, "info.params = {ood::ParamSpec::")) << source;
    EXPECT_FALSE(contains(source, "@")) << "unreplaced placeholder in " << source;
    EXPECT_FALSE(contains(read(project / ("test_" + file + ".cpp")), "@NAME@"));
    EXPECT_TRUE(contains(read(project / "pipeline.json"), "\"plugin\": \"" + name + "\""));
  }
}

TEST(NewPlugin, NamesBecomeIdentifiersAndDirIsThePlace) {
  const fs::path dir = scratch("names");
  auto r = ood("new-plugin 3d-points --kind detector --dir nested/deeper/x", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string source = read(dir / "nested/deeper/x/3d_points.cpp");
  EXPECT_TRUE(contains(source, "class Plugin3dPoints final")) << source;
  EXPECT_TRUE(contains(read(dir / "nested/deeper/x/meson.build"), "project('3d-points'"));
  // No staging directory is left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "nested/deeper")) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(NewPlugin, RefusesBadNamesKindsAndExistingDirectories) {
  const fs::path dir = scratch("refusals");
  for (const std::string name : {"My-Detector", "my--detector", "x-", "my_detector", "a/b", "1.0"}) {
    const auto r = ood("new-plugin '" + name + "' --kind detector", dir);
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "invalid name '" + name + "'")) << r.output;
    EXPECT_TRUE(contains(r.output, "lower-case letters, digits and single inner hyphens")) << r.output;
  }
  auto r = ood("new-plugin x --kind detecter", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown kind 'detecter' (did you mean 'detector'?)")) << r.output;
  r = ood("new-plugin x", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "give --kind")) << r.output;
  r = ood("new-plugin --kind loss", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "give the plugin's name")) << r.output;

  // A name a loaded plugin already uses for that kind (the build tree's built-ins).
  r = ood("new-plugin energy-based --kind detector", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "a detector named 'energy-based' exists already")) << r.output;
  EXPECT_TRUE(contains(r.output, "ood-energy-based.so")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "energy-based"));
  // ... but another kind may use it.
  r = ood("new-plugin energy-based --kind loss", dir);
  EXPECT_EQ(r.exit_code, 0) << r.output;

  fs::create_directories(dir / "taken");
  std::ofstream(dir / "taken" / "mine.txt") << "keep me";
  r = ood("new-plugin taken --kind detector", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "taken exists already; not overwriting it")) << r.output;
  EXPECT_EQ(read(dir / "taken" / "mine.txt"), "keep me");
  fs::create_directories(dir / "empty");
  r = ood("new-plugin x --kind detector --dir empty", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(dir / "empty" / "meson.build"));
}

TEST(NewPlugin, HelpDescribesTheCommand) {
  const auto r = ood("new-plugin --help", fs::temp_directory_path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "ood new-plugin NAME --kind KIND [--dir DIR]")) << r.output;
  EXPECT_TRUE(contains(ood("--help", fs::temp_directory_path()).output, "new-plugin NAME --kind K"));
}

}  // namespace
