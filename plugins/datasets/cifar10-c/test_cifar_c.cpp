// cifar10-c and cifar100-c on miniature tars (labels.npy and one .npy per corruption),
// served through $OOD_RESOURCES.
#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCorruptions = {
    "brightness",    "contrast",       "defocus_blur", "elastic_transform", "fog",              "frost",
    "gaussian_blur", "gaussian_noise", "glass_blur",   "impulse_noise",     "jpeg_compression", "motion_blur",
    "pixelate",      "saturate",       "shot_noise",   "snow",              "spatter",          "speckle_noise",
    "zoom_blur"};

// 10 images per corruption (5 severities x 2): image i of corruption k has every pixel
// (k * 10 + i) in channel 0, i in channel 1, k in channel 2.
fs::path miniature(const fs::path& dir, const std::string& folder, const std::vector<std::int64_t>& labels) {
  std::vector<ArchiveEntry> entries = {{folder + "/labels.npy", npy_bytes("<i8", {10}, int64_bytes(labels))}};
  for (std::size_t k = 0; k < kCorruptions.size(); ++k) {
    std::string data;
    for (int i = 0; i < 10; ++i)
      for (int p = 0; p < 32 * 32; ++p) {
        data += static_cast<char>(k * 10 + i);
        data += static_cast<char>(i);
        data += static_cast<char>(k);
      }
    entries.push_back({folder + "/" + kCorruptions[k] + ".npy", npy_bytes("|u1", {10, 32, 32, 3}, data)});
  }
  write_archive(dir / (folder + ".tar"), entries);
  return dir / (folder + ".tar");
}

TEST(CifarC, SubsetsSeveritiesAndAll) {
  const fs::path dir = temp_dir("cifar10_c");
  ServedResources served(dir / "server");
  served.serve(miniature(dir / "src", "CIFAR-10-C", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  const std::string root = (dir / "root").string();
  auto fog = make_dataset("cifar10-c", R"({"root": ")" + root + R"(", "subset": "fog", "download": true})");
  ASSERT_EQ(fog->size(), 10);
  EXPECT_TRUE(fog->labels().equal(at::arange(10, at::kLong)));
  const Sample s = fog->get(3);
  ASSERT_EQ(s.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_FLOAT_EQ(s.input[0][7][9].item<float>(), 43.0f / 255);  // fog is corruption 4
  EXPECT_FLOAT_EQ(s.input[1][0][0].item<float>(), 3.0f / 255);
  EXPECT_FLOAT_EQ(s.input[2][31][0].item<float>(), 4.0f / 255);
  EXPECT_EQ(s.label(), 3);

  auto severe = make_dataset("cifar10-c", R"({"root": ")" + root + R"(", "subset": "fog", "severity": 5})");
  ASSERT_EQ(severe->size(), 2);
  EXPECT_TRUE(severe->labels().equal(at::tensor({8, 9}, at::kLong)));
  EXPECT_FLOAT_EQ(severe->get(0).input[0][0][0].item<float>(), 48.0f / 255);

  auto all = make_dataset("cifar10-c", R"({"root": ")" + root + R"("})");
  ASSERT_EQ(all->size(), 190);
  EXPECT_FLOAT_EQ(all->get(185).input[2][0][0].item<float>(), 18.0f / 255);  // zoom_blur, image 5
  EXPECT_EQ(all->get(185).label(), 5);
  EXPECT_EQ(served.requests("CIFAR-10-C.tar"), 1);
}

TEST(CifarC, Cifar100FolderAndLabelRange) {
  const fs::path dir = temp_dir("cifar100_c");
  ServedResources served(dir / "server");
  served.serve(miniature(dir / "src", "CIFAR-100-C", {99, 0, 50, 1, 2, 3, 4, 5, 6, 7}));
  auto ds = make_dataset("cifar100-c", R"({"root": ")" + (dir / "root").string() + R"(", "subset": "snow", "download": true})");
  EXPECT_EQ(ds->get(0).label(), 99);
  // The CIFAR-10 loader refuses labels >= 10 in the same files.
  fs::rename(dir / "root/CIFAR-100-C", dir / "root/CIFAR-10-C");
  try {
    make_dataset("cifar10-c", R"({"root": ")" + (dir / "root").string() + R"(", "subset": "snow"})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("labels must be 0..9"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
