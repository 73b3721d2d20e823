// inaturalist on a miniature of OpenOOD's iNaturalist.zip (images/<hash>.jpg at the top,
// extracted into root/iNaturalist): served through $OOD_RESOURCES, which gives the
// Google-Drive-only resource a URL, and placed by hand, as users must.
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

// The zip, with PNG content in .jpg names for exact values and one real JPEG.
fs::path write_zip(const fs::path& dir) {
  put_png(dir / "tree/images/ff3ad1f7b5e24b8c8a2b0a6f0e6d2c11.jpg", pattern(3, 5, 6));
  put_png(dir / "tree/images/00046bb1c5a5f8b4d5eb1e5d03ed06d2.jpg", pattern(1, 4, 4));
  put_jpeg(dir / "tree/images/7a1c0e2f0e3a4b5c9d8e7f6a5b4c3d2e.jpg", pattern(2, 24, 16));
  write_archive(dir / "iNaturalist.zip", tree_entries(dir / "tree", "images"));
  return dir / "iNaturalist.zip";
}

void expect_miniature(const Dataset& inaturalist) {
  ASSERT_EQ(inaturalist.size(), 3);
  EXPECT_TRUE(inaturalist.labels().equal(at::full({3}, -1, at::kLong)));
  EXPECT_TRUE(inaturalist.get(0).input.equal(as_input(pattern(1, 4, 4))));
  const Sample jpeg = inaturalist.get(1);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 24, 16}));
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(2, 24, 16)), 0, 8.0 / 255));  // lossy
  EXPECT_EQ(jpeg.label(), -1);
  EXPECT_TRUE(inaturalist.get(2).input.equal(as_input(pattern(3, 5, 6))));
}

TEST(Inaturalist, ExtractsTheZipIntoItsFolderAndReadsEveryImageAsOod) {
  const fs::path dir = temp_dir("inaturalist");
  const fs::path zip = write_zip(dir);
  ServedResources served(dir / "server");
  served.serve(zip);
  const fs::path root = dir / "root";
  expect_miniature(*make_dataset("inaturalist", R"({"root": ")" + root.string() + R"(", "download": true})"));
  EXPECT_TRUE(fs::is_directory(root / "iNaturalist/images"));
  fs::remove(root / "iNaturalist.zip");
  EXPECT_EQ(make_dataset("inaturalist", R"({"root": ")" + root.string() + R"("})")->size(), 3);
  EXPECT_EQ(served.requests("iNaturalist.zip"), 1);
}

TEST(Inaturalist, AZipPlacedByHandIsExtractedWithDownloadTrue) {
  const fs::path dir = temp_dir("inaturalist_placed");
  const fs::path root = dir / "root";
  fs::create_directories(root);
  fs::copy_file(write_zip(dir), root / "iNaturalist.zip");
  expect_miniature(*make_dataset("inaturalist", R"({"root": ")" + root.string() + R"(", "download": true})"));
}

TEST(Inaturalist, MissingDataSaysWhereToGetTheZip) {
  const fs::path root = temp_dir("inaturalist_missing");
  for (const char* download : {"false", "true"}) {
    try {
      make_dataset("inaturalist", R"({"root": ")" + root.string() + R"(", "download": )" + download + "}");
      FAIL() << "no error";
    } catch (const FileError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("inaturalist: "), std::string::npos) << m;
      EXPECT_NE(m.find("iNaturalist.zip"), std::string::npos) << m;
      EXPECT_NE(m.find("1zfLfMvoUD0CUlKNnkk7LgxZZBnTBipdj"), std::string::npos) << m;
      EXPECT_NE(m.find("put it into " + root.string()), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace ood::test
