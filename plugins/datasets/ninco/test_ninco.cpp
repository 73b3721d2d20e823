// ninco on a miniature of NINCO_all.tar.gz: NINCO/NINCO_OOD_classes/<class>/ with the
// real archive's naming (class folders with spaces, .jpg/.jpeg/.png files), plus the
// unit-test and popular-dataset folders that are not part of the dataset.
#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::pattern;
using folder_set::put_png;
using folder_set::put_jpeg;
using folder_set::as_input;

TEST(Ninco, DownloadsTheArchiveAndReadsTheOodClassesOnly) {
  const fs::path dir = temp_dir("ninco");
  const fs::path classes = dir / "tree/NINCO/NINCO_OOD_classes";
  put_png(classes / "amphiuma_means/amphiuma_means_001_10239954.jpg", pattern(2, 5, 4));
  put_png(classes / "amphiuma_means/amphiuma_means_000_10045958.jpeg", pattern(1, 3, 7));
  put_png(classes / "Caracal caracal caracal/Caracal caracal caracal_001_001-11713603.png", pattern(3, 6, 6));
  put_jpeg(classes / "Caracal caracal caracal/Caracal caracal caracal_000_000-10896690.jpg", pattern(4, 16, 24));
  put_png(dir / "tree/NINCO/NINCO_OOD_unit_tests/black/black_0.png", pattern(9, 2, 2));
  put_png(dir / "tree/NINCO/NINCO_popular_datasets_subsamples/Textures/banded_0002.jpg", pattern(9, 2, 2));
  write_archive(dir / "NINCO_all.tar.gz", tree_entries(dir / "tree", "NINCO"));

  ServedResources served(dir / "server");
  served.serve(dir / "NINCO_all.tar.gz");
  const fs::path root = dir / "root";
  auto ninco = make_dataset("ninco", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(ninco->size(), 4);
  EXPECT_TRUE(ninco->labels().equal(at::full({4}, -1, at::kLong)));
  // "Caracal caracal caracal" sorts before "amphiuma_means" (byte order).
  const Sample jpeg = ninco->get(0);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 16, 24}));
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(4, 16, 24)), 0, 8.0 / 255));  // lossy
  EXPECT_EQ(jpeg.label(), -1);
  EXPECT_TRUE(ninco->get(1).input.equal(as_input(pattern(3, 6, 6))));
  EXPECT_TRUE(ninco->get(2).input.equal(as_input(pattern(1, 3, 7))));
  EXPECT_TRUE(ninco->get(3).input.equal(as_input(pattern(2, 5, 4))));

  fs::remove(root / "NINCO_all.tar.gz");
  EXPECT_EQ(make_dataset("ninco", R"({"root": ")" + root.string() + R"("})")->size(), 4);
  EXPECT_EQ(served.requests("NINCO_all.tar.gz"), 1);
}

TEST(Ninco, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("ninco_missing");
  try {
    make_dataset("ninco", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ninco: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "NINCO/NINCO_OOD_classes").string()), std::string::npos) << m;
    EXPECT_NE(m.find("zenodo.org/record/8013288/files/NINCO_all.tar.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("b9ffae324363cd900a81ce3c367cd834"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
