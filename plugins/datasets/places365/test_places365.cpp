// places365 on a miniature of OpenOOD's places365.zip (<scene>/<file>.jpg at the top,
// extracted into root/places365), served through $OOD_RESOURCES, which gives the
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
using folder_set::put_jpeg;
using folder_set::as_input;

TEST(Places365, ExtractsTheZipIntoItsFolderAndReadsEverySceneFolder) {
  const fs::path dir = temp_dir("places365");
  const fs::path tree = dir / "tree";
  // Scene folders created in reverse order (the dataset sorts), a file at the top that
  // is not a sample, and a greyscale image kept with one channel.
  put_png(tree / "zen_garden/Places365_val_00000104.jpg", pattern(3, 5, 5));
  put_png(tree / "abbey/Places365_val_00000002.jpg", pattern(2, 4, 6));
  put_png(tree / "abbey/Places365_val_00000001.jpg", pattern(1, 6, 4));
  put_jpeg(tree / "airfield/Places365_val_00000013.jpg", at::full({8, 8, 1}, 200, at::kByte));
  std::ofstream(tree / "places365_labels.txt") << "abbey 0\n";
  std::vector<ArchiveEntry> entries;
  for (const char* top : {"abbey", "airfield", "places365_labels.txt", "zen_garden"})
    for (auto& e : tree_entries(tree, top)) entries.push_back(std::move(e));
  write_archive(dir / "places365.zip", entries);

  ServedResources served(dir / "server");
  served.serve(dir / "places365.zip");
  const fs::path root = dir / "root";
  auto places = make_dataset("places365", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(places->size(), 4);
  EXPECT_TRUE(places->labels().equal(at::full({4}, -1, at::kLong)));
  const Sample first = places->get(0);
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 6, 4}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 6, 4))));
  EXPECT_EQ(first.label(), -1);
  EXPECT_TRUE(places->get(1).input.equal(as_input(pattern(2, 4, 6))));
  const Sample grey = places->get(2);
  EXPECT_EQ(grey.input.sizes(), (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_TRUE(all_close(grey.input, at::full({1, 8, 8}, 200.0 / 255), 0, 2.0 / 255));
  EXPECT_TRUE(places->get(3).input.equal(as_input(pattern(3, 5, 5))));

  fs::remove(root / "places365.zip");
  EXPECT_EQ(make_dataset("places365", R"({"root": ")" + root.string() + R"("})")->size(), 4);
  EXPECT_EQ(served.requests("places365.zip"), 1);
}

TEST(Places365, MissingDataSaysWhereToGetTheZip) {
  const fs::path root = temp_dir("places365_missing");
  for (const char* download : {"false", "true"}) {
    try {
      make_dataset("places365", R"({"root": ")" + root.string() + R"(", "download": )" + download + "}");
      FAIL() << "no error";
    } catch (const FileError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("places365: "), std::string::npos) << m;
      EXPECT_NE(m.find("places365.zip"), std::string::npos) << m;
      EXPECT_NE(m.find("put it into " + root.string()), std::string::npos) << m;
      EXPECT_NE(m.find("1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay"), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace ood::test
