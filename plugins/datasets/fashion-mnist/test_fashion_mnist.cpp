// fashion-mnist on Debian's real files, and clear errors on corrupt ones.
#include "test_support.hpp"

#include <fstream>

#include "ood/error.hpp"
#include "ood/io/idx.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
const fs::path kDebianRoot = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, ReadsDebiansFiles) {
  auto test = make_dataset("fashion-mnist", R"({"split": "test"})");
  ASSERT_EQ(test->size(), 10000);
  const at::Tensor labels = test->labels();
  EXPECT_TRUE(at::bincount(labels).equal(at::full({10}, 1000, at::kLong)));
  const Sample s = test->get(0);
  EXPECT_EQ(s.input.sizes(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(s.input.scalar_type(), at::kFloat);
  EXPECT_GE(s.input.min().item<float>(), 0.0f);
  EXPECT_LE(s.input.max().item<float>(), 1.0f);
  EXPECT_EQ(s.label(), labels[0].item<int64_t>());
  // Pixels are the file's bytes / 255, in row-major order.
  const at::Tensor raw = io::read_idx(kDebianRoot / "t10k-images-idx3-ubyte.gz");
  EXPECT_TRUE(all_close(s.input[0], raw[0].to(at::kFloat) / 255.0f, 0, 1e-7));
  EXPECT_TRUE(all_close(test->get(9999).input[0], raw[9999].to(at::kFloat) / 255.0f, 0, 1e-7));
  EXPECT_EQ(test->info().classes.at(9), "Ankle boot");

  auto train = make_dataset("fashion-mnist");
  EXPECT_EQ(train->size(), 60000);
  EXPECT_TRUE(at::bincount(train->labels()).equal(at::full({10}, 6000, at::kLong)));
}

TEST(FashionMnist, FindsTorchvisionLayoutAndPlainFiles) {
  const fs::path root = temp_dir("fmnist_layout");
  const fs::path raw = root / "FashionMNIST" / "raw";
  fs::create_directories(raw);
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    const auto bytes = io::read_maybe_gzipped(kDebianRoot / (std::string(name) + ".gz"));
    std::ofstream(raw / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                       static_cast<std::streamsize>(bytes.size()));
  }
  auto ds = make_dataset("fashion-mnist", R"({"split": "test", "root": ")" + root.string() + "\"}");
  EXPECT_EQ(ds->size(), 10000);
}

void write_bytes(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

std::string error_for(const fs::path& root) {
  try {
    make_dataset("fashion-mnist", R"({"split": "test", "root": ")" + root.string() + "\"}");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FashionMnist, CorruptFilesGiveClearErrors) {
  std::ifstream in(kDebianRoot / "t10k-images-idx3-ubyte.gz", std::ios::binary);
  const std::vector<std::uint8_t> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto labels = io::read_maybe_gzipped(kDebianRoot / "t10k-labels-idx1-ubyte.gz");

  // Missing files.
  const fs::path empty = temp_dir("fmnist_missing");
  EXPECT_NE(error_for(empty).find("t10k-images-idx3-ubyte"), std::string::npos) << error_for(empty);

  // A truncated download.
  const fs::path truncated = temp_dir("fmnist_truncated");
  write_bytes(truncated / "t10k-images-idx3-ubyte.gz", {gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)});
  write_bytes(truncated / "t10k-labels-idx1-ubyte", labels);
  EXPECT_NE(error_for(truncated).find("truncated gzip"), std::string::npos) << error_for(truncated);

  // Bad magic number.
  const fs::path magic = temp_dir("fmnist_magic");
  auto images = io::read_maybe_gzipped(kDebianRoot / "t10k-images-idx3-ubyte.gz");
  images[0] = 0x42;
  write_bytes(magic / "t10k-images-idx3-ubyte", images);
  write_bytes(magic / "t10k-labels-idx1-ubyte", labels);
  EXPECT_NE(error_for(magic).find("bad magic"), std::string::npos) << error_for(magic);

  // Image data cut short (uncompressed).
  const fs::path short_data = temp_dir("fmnist_short");
  images[0] = 0;
  write_bytes(short_data / "t10k-images-idx3-ubyte", {images.begin(), images.end() - 100});
  write_bytes(short_data / "t10k-labels-idx1-ubyte", labels);
  EXPECT_NE(error_for(short_data).find("truncated IDX data"), std::string::npos) << error_for(short_data);

  // Labels for another number of images.
  const fs::path mismatch = temp_dir("fmnist_mismatch");
  write_bytes(mismatch / "t10k-images-idx3-ubyte", images);
  auto fewer = labels;
  fewer[7] = 0x0f;  // the count 10000 (0x2710) becomes 9999 ...
  fewer.pop_back();  // ... and the data one byte shorter: a consistent file of 9999 labels
  write_bytes(mismatch / "t10k-labels-idx1-ubyte", fewer);
  EXPECT_NE(error_for(mismatch).find("9999 labels for 10000 images"), std::string::npos) << error_for(mismatch);
}

}  // namespace
}  // namespace ood::test
