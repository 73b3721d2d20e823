// tiny-images-300k on a miniature 300K_random_images.npy, served through $OOD_RESOURCES.
#include <fstream>

#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

TEST(TinyImages300k, DownloadsTheArrayAsOutliers) {
  const fs::path dir = temp_dir("tiny_images_300k");
  std::string pixels;
  for (int i = 0; i < 4; ++i)
    for (int p = 0; p < 32 * 32; ++p) pixels += std::string{static_cast<char>(i), static_cast<char>(p % 32), '\x07'};
  fs::create_directories(dir / "src");
  std::ofstream(dir / "src/300K_random_images.npy", std::ios::binary) << npy_bytes("|u1", {4, 32, 32, 3}, pixels);
  ServedResources served(dir / "server");
  served.serve(dir / "src/300K_random_images.npy");
  auto ds = make_dataset("tiny-images-300k", R"({"root": ")" + (dir / "root").string() + R"(", "download": true})");
  ASSERT_EQ(ds->size(), 4);
  EXPECT_TRUE(ds->labels().equal(at::full({4}, -1, at::kLong)));
  const Sample s = ds->get(2);
  EXPECT_FLOAT_EQ(s.input[0][5][5].item<float>(), 2.0f / 255);
  EXPECT_FLOAT_EQ(s.input[1][5][9].item<float>(), 9.0f / 255);  // column index
  EXPECT_FLOAT_EQ(s.input[2][0][0].item<float>(), 7.0f / 255);
}

TEST(TinyImages300k, ChecksumMismatchLeavesNoFile) {
  const fs::path dir = temp_dir("tiny_images_300k_md5");
  fs::create_directories(dir / "src");
  std::ofstream(dir / "src/300K_random_images.npy", std::ios::binary)
      << npy_bytes("|u1", {1, 32, 32, 3}, std::string(3072, '\0'));
  ServedResources served(dir / "server");
  served.serve(dir / "src/300K_random_images.npy", "", std::string(32, 'f'));
  try {
    make_dataset("tiny-images-300k", R"({"root": ")" + (dir / "root").string() + R"(", "download": true})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("md5"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "root/300K_random_images.npy"));
}

}  // namespace
}  // namespace ood::test
