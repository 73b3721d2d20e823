// ssb-hard on a miniature of OpenOOD's ssb_hard.zip (<wnid>/<wnid>_<n>.JPEG at the top,
// extracted into root/ssb_hard), served through $OOD_RESOURCES, which gives the
// Google-Drive-only resource a URL.
#include <fstream>

#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::pattern;
using folder_set::put_png;
using folder_set::as_input;

TEST(SsbHard, ExtractsTheZipIntoItsFolderAndReadsTheClassFoldersRecursively) {
  const fs::path dir = temp_dir("ssb_hard");
  const fs::path tree = dir / "tree";
  put_png(tree / "n12345678/n12345678_2.JPEG", pattern(2, 3, 5));
  put_png(tree / "n12345678/n12345678_1.JPEG", pattern(1, 5, 3));
  put_png(tree / "n01234567/extra/n01234567_9.JPEG", pattern(4, 2, 2));  // one level deeper
  put_png(tree / "n01234567/n01234567_1.JPEG", pattern(3, 4, 4));
  std::ofstream(tree / "README.txt") << "not a sample";
  std::vector<ArchiveEntry> entries;
  for (const char* top : {"README.txt", "n01234567", "n12345678"})
    for (auto& e : tree_entries(tree, top)) entries.push_back(std::move(e));
  write_archive(dir / "ssb_hard.zip", entries);

  ServedResources served(dir / "server");
  served.serve(dir / "ssb_hard.zip");
  const fs::path root = dir / "root";
  auto ssb = make_dataset("ssb-hard", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(ssb->size(), 4);
  EXPECT_TRUE(ssb->labels().equal(at::full({4}, -1, at::kLong)));
  const Sample first = ssb->get(0);
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 2, 2}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(4, 2, 2))));  // ".../extra/..." sorts first
  EXPECT_EQ(first.label(), -1);
  EXPECT_TRUE(ssb->get(1).input.equal(as_input(pattern(3, 4, 4))));
  EXPECT_TRUE(ssb->get(2).input.equal(as_input(pattern(1, 5, 3))));
  EXPECT_TRUE(ssb->get(3).input.equal(as_input(pattern(2, 3, 5))));

  fs::remove(root / "ssb_hard.zip");
  EXPECT_EQ(make_dataset("ssb-hard", R"({"root": ")" + root.string() + R"("})")->size(), 4);
  EXPECT_EQ(served.requests("ssb_hard.zip"), 1);
}

TEST(SsbHard, MissingDataSaysWhereToGetTheZip) {
  const fs::path root = temp_dir("ssb_hard_missing");
  for (const char* download : {"false", "true"}) {
    try {
      make_dataset("ssb-hard", R"({"root": ")" + root.string() + R"(", "download": )" + download + "}");
      FAIL() << "no error";
    } catch (const FileError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("ssb-hard: "), std::string::npos) << m;
      EXPECT_NE(m.find("ssb_hard.zip"), std::string::npos) << m;
      EXPECT_NE(m.find("1PzkA-WGG8Z18h0ooL_pDdz9cO-DCIouE"), std::string::npos) << m;
      EXPECT_NE(m.find("put it into " + root.string()), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace ood::test
