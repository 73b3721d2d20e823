// open-images-o on a miniature of OpenOOD's openimage_o.zip (images/<hash>.jpg at the
// top, extracted into root/OpenImagesO) and of pytorch-ood's two file lists, all served
// through $OOD_RESOURCES (which gives the Google-Drive-only zip a URL).
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
using folder_set::put_text;
using folder_set::as_input;

std::string params(const fs::path& root, const std::string& rest = "") {
  return R"({"root": ")" + root.string() + "\"" + rest + "}";
}

// Images named like the real ones (16 hex digits); the lists name them in an order that
// is not sorted, as the real lists do.
void write_images(const fs::path& base) {
  put_png(base / "images/b85bd6c20e9c378a.jpg", pattern(1, 4, 5));
  put_png(base / "images/142782398b3af718.jpg", pattern(2, 6, 3));
  put_jpeg(base / "images/cf6e44bb1ddffd51.jpg", pattern(3, 24, 32));
  put_png(base / "images/11e8385ee216a9c8.jpg", pattern(4, 2, 2));
}
const char* const kTestList =
    "[\n    \"b85bd6c20e9c378a.jpg\",\n    \"cf6e44bb1ddffd51.jpg\",\n    \"142782398b3af718.jpg\"\n]";
const char* const kValList = "[\n    \"11e8385ee216a9c8.jpg\"\n]";

TEST(OpenImagesO, ExtractsTheZipDownloadsTheListAndReadsTheSubsetInListOrder) {
  const fs::path dir = temp_dir("open_images_o");
  write_images(dir / "tree");
  write_archive(dir / "openimage_o.zip", tree_entries(dir / "tree", "images"));
  put_text(dir / "test_openimage_o.json", kTestList);
  put_text(dir / "val_openimage_o.json", kValList);
  ServedResources served(dir / "server");
  served.serve(dir / "openimage_o.zip");
  served.serve(dir / "test_openimage_o.json");
  served.serve(dir / "val_openimage_o.json");
  const fs::path root = dir / "root";

  auto test = make_dataset("open-images-o", params(root, R"(, "download": true)"));  // subset test by default
  ASSERT_EQ(test->size(), 3);
  EXPECT_TRUE(test->labels().equal(at::full({3}, -1, at::kLong)));
  const Sample first = test->get(0);
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 4, 5))));
  EXPECT_EQ(first.label(), -1);
  const Sample jpeg = test->get(1);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 24, 32}));
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(3, 24, 32)), 0, 8.0 / 255));  // lossy
  EXPECT_TRUE(test->get(2).input.equal(as_input(pattern(2, 6, 3))));
  EXPECT_TRUE(fs::is_regular_file(root / "OpenImagesO/test_openimage_o.json"));

  // val: the images are there, only its list is fetched.
  auto val = make_dataset("open-images-o", params(root, R"(, "download": true, "subset": "val")"));
  ASSERT_EQ(val->size(), 1);
  EXPECT_TRUE(val->get(0).input.equal(as_input(pattern(4, 2, 2))));
  EXPECT_EQ(served.requests("openimage_o.zip"), 1);
  EXPECT_EQ(served.requests("test_openimage_o.json"), 1);
  EXPECT_EQ(served.requests("val_openimage_o.json"), 1);

  fs::remove(root / "openimage_o.zip");
  EXPECT_EQ(make_dataset("open-images-o", params(root, R"(, "subset": "test")"))->size(), 3);
}

TEST(OpenImagesO, ABadSubsetIsRejectedByTheSchema) {
  const fs::path root = temp_dir("open_images_o_subset");
  try {
    make_dataset("open-images-o", params(root, R"(, "subset": "train")"));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("subset"), std::string::npos) << e.what();
  }
}

TEST(OpenImagesO, AListThatIsNotAnArrayOfFileNamesOrNamesMissingImagesIsAnError) {
  const fs::path root = temp_dir("open_images_o_lists");
  write_images(root / "OpenImagesO");
  const fs::path list = root / "OpenImagesO/test_openimage_o.json";
  for (const char* bad : {"{\"names\": []}", "[]", "[\"../images/b85bd6c20e9c378a.jpg\"]", "[1]", "[\"a.jpg\""}) {
    put_text(list, bad);
    try {
      make_dataset("open-images-o", params(root));
      FAIL() << "no error for " << bad;
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find("open-images-o: " + list.string()), std::string::npos) << e.what();
    }
  }
  put_text(list, "[\"b85bd6c20e9c378a.jpg\", \"0000000000000000.jpg\", \"1111111111111111.jpg\"]");
  try {
    make_dataset("open-images-o", params(root));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("2 of the 3 images listed in " + list.string()), std::string::npos) << m;
    EXPECT_NE(m.find("0000000000000000.jpg"), std::string::npos) << m;
  }
}

TEST(OpenImagesO, MissingDataNamesTheZipsDriveIdAndTheListsUrl) {
  const fs::path root = temp_dir("open_images_o_missing");
  try {
    make_dataset("open-images-o", params(root, R"(, "subset": "val")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("open-images-o: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "OpenImagesO/images").string()), std::string::npos) << m;
    EXPECT_NE(m.find("1VUFXnB_z70uHfdgJG2E_pjYOcEgqM7tE"), std::string::npos) << m;
    EXPECT_NE(m.find("raw.githubusercontent.com/kkirchheim/pytorch-ood/"), std::string::npos) << m;
    EXPECT_NE(m.find("val_openimage_o.json"), std::string::npos) << m;
    EXPECT_NE(m.find("85e38d2d6ae062f08a37b4cf177cdbf6"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
