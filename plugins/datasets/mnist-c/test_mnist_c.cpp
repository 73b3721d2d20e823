// mnist-c on a miniature mnist_c.zip, served through $OOD_RESOURCES.
#include <fstream>

#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCorruptions = {
    "brightness", "canny_edges", "dotted_line", "fog",        "glass_blur", "identity", "impulse_noise", "motion_blur",
    "rotate",     "scale",       "shear",       "shot_noise", "spatter",    "stripe",   "translate",     "zigzag"};

TEST(MnistC, ReadsEachCorruptionAndAll) {
  const fs::path dir = temp_dir("mnist_c");
  std::vector<ArchiveEntry> entries;
  for (std::size_t k = 0; k < kCorruptions.size(); ++k)
    for (const std::string split : {"train", "test"}) {
      const int n = split == "train" ? 3 : 2;
      std::string pixels;
      for (int i = 0; i < n; ++i) pixels += std::string(28 * 28, static_cast<char>(k * 10 + i));
      std::vector<std::int64_t> labels;
      for (int i = 0; i < n; ++i) labels.push_back((k + i) % 10);
      const std::string folder = "mnist_c/" + kCorruptions[k] + "/";
      entries.push_back({folder + split + "_images.npy", npy_bytes("|u1", {n, 28, 28, 1}, pixels)});
      entries.push_back({folder + split + "_labels.npy", npy_bytes("<i8", {n}, int64_bytes(labels))});
    }
  write_archive(dir / "src/mnist_c.zip", entries);
  ServedResources served(dir / "server");
  served.serve(dir / "src/mnist_c.zip");
  const std::string root = (dir / "root").string();
  auto fog = make_dataset("mnist-c", R"({"root": ")" + root + R"(", "subset": "fog", "split": "train", "download": true})");
  ASSERT_EQ(fog->size(), 3);
  EXPECT_TRUE(fog->labels().equal(at::tensor({3, 4, 5}, at::kLong)));
  const Sample s = fog->get(1);
  ASSERT_EQ(s.input.sizes(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_FLOAT_EQ(s.input[0][27][3].item<float>(), 31.0f / 255);
  auto all = make_dataset("mnist-c", R"({"root": ")" + root + R"("})");  // test split, all 16
  ASSERT_EQ(all->size(), 32);
  EXPECT_FLOAT_EQ(all->get(31).input[0][0][0].item<float>(), 151.0f / 255);  // zigzag, image 1
}

TEST(MnistC, MismatchedLabelsAreNamed) {
  const fs::path root = temp_dir("mnist_c_bad");
  fs::create_directories(root / "mnist_c/fog");
  std::ofstream(root / "mnist_c/fog/test_images.npy", std::ios::binary)
      << npy_bytes("|u1", {2, 28, 28, 1}, std::string(2 * 784, '\0'));
  std::ofstream(root / "mnist_c/fog/test_labels.npy", std::ios::binary) << npy_bytes("<i8", {1}, int64_bytes({1}));
  try {
    make_dataset("mnist-c", R"({"root": ")" + root.string() + R"(", "subset": "fog"})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("test_labels.npy"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
