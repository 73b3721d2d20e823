// mnist on miniature IDX files (the four .gz downloads), served through $OOD_RESOURCES.
#include <fstream>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

// IDX bytes: magic 0 0 8 ndims, big-endian sizes, then the uint8 data.
std::string idx_bytes(const std::vector<std::uint32_t>& dims, const std::string& data) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((d >> shift) & 0xff);
  return out + data;
}

// Image i of the miniature: pixel (y, x) = (i * 40 + y + x) mod 256.
std::string images(int n) {
  std::string data;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) data += static_cast<char>((i * 40 + y + x) % 256);
  return idx_bytes({static_cast<std::uint32_t>(n), 28, 28}, data);
}

void serve_miniature(const fs::path& dir, ServedResources& served) {
  write_gzip(dir / "train-images-idx3-ubyte.gz", images(5));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_bytes({5}, std::string("\x03\x01\x04\x01\x05", 5)));
  write_gzip(dir / "t10k-images-idx3-ubyte.gz", images(2));
  write_gzip(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes({2}, std::string("\x09\x02", 2)));
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"})
    served.serve(dir / f);
}

TEST(Mnist, DownloadsDecompressesAndReadsTorchvisionsLayout) {
  const fs::path dir = temp_dir("mnist");
  ServedResources served(dir / "server");
  serve_miniature(dir / "files", served);
  const fs::path root = dir / "root";
  auto train = make_dataset("mnist", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(train->size(), 5);
  EXPECT_TRUE(fs::is_regular_file(root / "MNIST/raw/train-images-idx3-ubyte"));  // decompressed as torchvision
  EXPECT_TRUE(train->labels().equal(at::tensor({3, 1, 4, 1, 5}, at::kLong)));
  const Sample s = train->get(2);
  EXPECT_EQ(s.input.sizes(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(s.label(), 4);
  EXPECT_FLOAT_EQ(s.input[0][0][0].item<float>(), 80.0f / 255);
  EXPECT_FLOAT_EQ(s.input[0][3][5].item<float>(), 88.0f / 255);
  auto test = make_dataset("mnist", R"({"root": ")" + root.string() + R"(", "train": false})");
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(test->get(1).label(), 2);
  EXPECT_EQ(served.requests("t10k-images-idx3-ubyte.gz"), 1);
}

TEST(Mnist, ReadsGzipFilesLeftInRawWithoutDownloading) {
  const fs::path dir = temp_dir("mnist_gz");
  ServedResources served(dir / "server");
  serve_miniature(dir / "root/MNIST/raw", served);
  auto test = make_dataset("mnist", R"({"root": ")" + (dir / "root").string() + R"(", "train": false})");
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(served.requests("t10k-images-idx3-ubyte.gz"), 0);
}

TEST(Mnist, MissingAndInconsistentFilesAreNamed) {
  const fs::path dir = temp_dir("mnist_bad");
  try {
    make_dataset("mnist", R"({"root": ")" + dir.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("MNIST/raw/train-images-idx3-ubyte"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ossci-datasets"), std::string::npos) << e.what();
  }
  const fs::path raw = dir / "MNIST/raw";
  fs::create_directories(raw);
  std::ofstream(raw / "t10k-images-idx3-ubyte", std::ios::binary) << images(2);
  std::ofstream(raw / "t10k-labels-idx1-ubyte", std::ios::binary) << idx_bytes({3}, "\x01\x02\x03");
  std::ofstream(raw / "train-images-idx3-ubyte", std::ios::binary) << images(1);
  std::ofstream(raw / "train-labels-idx1-ubyte", std::ios::binary) << idx_bytes({1}, "\x01");
  try {
    make_dataset("mnist", R"({"root": ")" + dir.string() + R"(", "train": false})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("t10k-labels-idx1-ubyte"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
