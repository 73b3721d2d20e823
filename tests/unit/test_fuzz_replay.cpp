// Every fuzz corpus and crash file, fed to the fuzz targets' entry functions in the
// normal (gcc) build: a crash found once by `tools/dev.sh fuzz` stays fixed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_entries.hpp"

namespace ood::fuzz {
namespace {

namespace fs = std::filesystem;

fs::path fuzz_dir() {
  const char* root = std::getenv("OOD_SOURCE_DIR");
  return fs::path(root ? root : ".") / "tests" / "fuzz";
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && it->path().filename().string()[0] != '.') out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, EveryCorpusAndCrashFileEndsInAMessageNotACrash) {
  const Target target = GetParam();
  const auto corpus = files_in(fuzz_dir() / "corpus" / target.name);
  ASSERT_FALSE(corpus.empty()) << "no seed files in " << (fuzz_dir() / "corpus" / target.name);
  auto files = corpus;
  const auto crashes = files_in(fuzz_dir() / "crashes" / target.name);
  files.insert(files.end(), crashes.begin(), crashes.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // An exception other than ood::Error escaping, a signal or a sanitizer report fails.
    EXPECT_NO_THROW(EXPECT_EQ(target.run(bytes.data(), bytes.size()), 0)) << file;
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(targets()),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ood::fuzz
