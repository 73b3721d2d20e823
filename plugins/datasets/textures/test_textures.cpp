// textures on a miniature of the real archive (dtd/images/<class>/*.jpg, with the
// labels/ and imdb/ folders the real one has), served through $OOD_RESOURCES.
#include <fstream>

#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::pattern;

TEST(Textures, DownloadsTheArchiveAndReadsEveryImageAsOod) {
  const fs::path dir = temp_dir("textures");
  const fs::path tree = dir / "tree";
  // Class folders in reverse creation order: the dataset sorts them.
  io::write_png(tree / "dtd/images/zigzagged/zigzagged_0001.jpg", pattern(3, 6, 5));  // a PNG named .jpg
  io::write_png(tree / "dtd/images/banded/banded_0002.jpg", pattern(2, 4, 4));
  io::write_png(tree / "dtd/images/banded/banded_0001.jpg", pattern(1, 5, 7));
  std::ofstream(tree / "dtd/labels/labels_joint_anno.txt") << "banded/banded_0001.jpg banded\n";
  std::ofstream(tree / "dtd/images/banded/.DS_Store") << "hidden";
  write_archive(dir / "textures-r1_0_1.tar.gz", tree_entries(tree, "dtd"));

  ServedResources served(dir / "server");
  served.serve(dir / "textures-r1_0_1.tar.gz");
  const fs::path root = dir / "root";
  auto textures = make_dataset("textures", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(textures->size(), 3);
  EXPECT_TRUE(textures->labels().equal(at::full({3}, -1, at::kLong)));
  const Sample first = textures->get(0);  // banded_0001
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 5, 7}));
  EXPECT_TRUE(first.input.equal(pattern(1, 5, 7).permute({2, 0, 1}).to(at::kFloat) / 255));
  EXPECT_EQ(first.label(), -1);
  EXPECT_TRUE(textures->get(2).input.equal(pattern(3, 6, 5).permute({2, 0, 1}).to(at::kFloat) / 255));

  // Prepared: the next construction neither downloads nor needs the archive.
  fs::remove(root / "textures-r1_0_1.tar.gz");
  EXPECT_EQ(make_dataset("textures", R"({"root": ")" + root.string() + R"("})")->size(), 3);
  EXPECT_EQ(served.requests("textures-r1_0_1.tar.gz"), 1);
}

TEST(Textures, MissingDataNamesTheFilesAndTheUrl) {
  const fs::path root = temp_dir("textures_missing");
  try {
    make_dataset("textures", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("textures: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "dtd/images").string()), std::string::npos) << m;
    EXPECT_NE(m.find("dtd-r1.0.1.tar.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("fff73e5086ae6bdbea199a49dfb8a4c1"), std::string::npos) << m;
  }
}

TEST(Textures, ACorruptImageIsNamedWhenRead) {
  const fs::path root = temp_dir("textures_corrupt");
  fs::create_directories(root / "dtd/images/banded");
  std::ofstream(root / "dtd/images/banded/broken.jpg") << "\xff\xd8\xff garbage";
  auto textures = make_dataset("textures", R"({"root": ")" + root.string() + R"("})");
  try {
    textures->get(0);
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.jpg"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
