// fooling-images on a miniature of 10_runs_x_1000_cppns.tar.gz:
// 10-runs-x-1000-cppns/run_{0..9}/map_gen_5000/ with PNGs and a file that is no PNG.
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

// One image per run (run k: pattern k + 1), two in run_9, and a PNG with an upper-case
// suffix and a text file that are not samples.
void write_tree(const fs::path& base) {
  const fs::path top = base / "10-runs-x-1000-cppns";
  for (int run = 0; run < 10; ++run)
    put_png(top / ("run_" + std::to_string(run)) / "map_gen_5000" / "map_elites_0001.png", pattern(run + 1, 4, 3));
  put_png(top / "run_9/map_gen_5000/map_elites_0000.png", pattern(20, 2, 5));
  put_png(top / "run_3/map_gen_5000/preview.PNG", pattern(25, 2, 2));
  std::ofstream(top / "run_3/map_gen_5000/log.txt") << "not an image";
}

TEST(FoolingImages, DownloadsTheArchiveAndReadsThePngsOfEveryRun) {
  const fs::path dir = temp_dir("fooling_images");
  write_tree(dir / "tree");
  write_archive(dir / "10_runs_x_1000_cppns.tar.gz", tree_entries(dir / "tree", "10-runs-x-1000-cppns"));

  ServedResources served(dir / "server");
  served.serve(dir / "10_runs_x_1000_cppns.tar.gz");
  const fs::path root = dir / "root";
  auto fooling = make_dataset("fooling-images", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(fooling->size(), 11);
  EXPECT_TRUE(fooling->labels().equal(at::full({11}, -1, at::kLong)));
  const Sample first = fooling->get(0);
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 4, 3}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 4, 3))));
  EXPECT_EQ(first.label(), -1);
  EXPECT_TRUE(fooling->get(3).input.equal(as_input(pattern(4, 4, 3))));
  EXPECT_TRUE(fooling->get(9).input.equal(as_input(pattern(20, 2, 5))));  // run_9, sorted
  EXPECT_TRUE(fooling->get(10).input.equal(as_input(pattern(10, 4, 3))));

  fs::remove(root / "10_runs_x_1000_cppns.tar.gz");
  EXPECT_EQ(make_dataset("fooling-images", R"({"root": ")" + root.string() + R"("})")->size(), 11);
  EXPECT_EQ(served.requests("10_runs_x_1000_cppns.tar.gz"), 1);
}

TEST(FoolingImages, AMissingRunIsNamed) {
  const fs::path root = temp_dir("fooling_images_missing_run");
  write_tree(root);
  fs::remove_all(root / "10-runs-x-1000-cppns/run_7");
  try {
    make_dataset("fooling-images", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fooling-images: "), std::string::npos) << m;
    EXPECT_NE(m.find((root / "10-runs-x-1000-cppns/run_7/map_gen_5000").string()), std::string::npos) << m;
  }
}

TEST(FoolingImages, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("fooling_images_missing");
  try {
    make_dataset("fooling-images", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fooling-images: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "10-runs-x-1000-cppns").string()), std::string::npos) << m;
    EXPECT_NE(m.find("s.anhnguyen.me/10_runs_x_1000_cppns.tar.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("0910d63973b1512770f37bebdbb53e37"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
