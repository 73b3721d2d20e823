// tiny-imagenet-crop on a miniature of the ODIN archive Imagenet.tar.gz (Imagenet/test/
// with numbered .jpg files), served through $OOD_RESOURCES.
#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

// A w x h RGB image whose pixel (y, x) is (10 * index, y, x).
at::Tensor pattern(std::int64_t index, std::int64_t h, std::int64_t w) {
  at::Tensor img = at::zeros({h, w, 3}, at::kByte);
  img.select(2, 0).fill_(10 * index);
  img.select(2, 1).copy_(at::arange(h).unsqueeze(1).expand({h, w}));
  img.select(2, 2).copy_(at::arange(w).unsqueeze(0).expand({h, w}));
  return img;
}

// io::write_png / write_jpeg into a folder created first.
void put_png(const fs::path& file, const at::Tensor& hwc) {
  fs::create_directories(file.parent_path());
  io::write_png(file, hwc);
}
void put_jpeg(const fs::path& file, const at::Tensor& hwc) {
  fs::create_directories(file.parent_path());
  io::write_jpeg(file, hwc);
}

at::Tensor as_input(const at::Tensor& hwc) { return hwc.permute({2, 0, 1}).to(at::kFloat) / 255; }

TEST(TinyImagenetCrop, DownloadsTheArchiveAndReadsEveryImageAsRgbOod) {
  const fs::path dir = temp_dir("tiny_imagenet_crop");
  const fs::path tree = dir / "tree";
  // PNGs named .jpg keep exact pixel values (the format is told by the content).
  put_png(tree / "Imagenet/test/10.jpg", pattern(2, 4, 6));
  const at::Tensor grey = at::arange(12, at::kByte).reshape({3, 4, 1}) * 20;
  put_png(tree / "Imagenet/test/2.jpg", grey);
  at::Tensor rgba = at::cat({pattern(3, 5, 5), at::full({5, 5, 1}, 7, at::kByte)}, 2);
  put_png(tree / "Imagenet/test/3.jpg", rgba);
  put_jpeg(tree / "Imagenet/test/1.jpg", pattern(1, 32, 32));
  write_archive(dir / "Imagenet.tar.gz", tree_entries(tree, "Imagenet"));

  ServedResources served(dir / "server");
  served.serve(dir / "Imagenet.tar.gz");
  const fs::path root = dir / "root";
  auto dataset = make_dataset("tiny-imagenet-crop", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(dataset->size(), 4);
  EXPECT_TRUE(dataset->labels().equal(at::full({4}, -1, at::kLong)));
  EXPECT_TRUE(dataset->info().input_shape.empty());
  // Sorted by name: 1.jpg, 10.jpg, 2.jpg, 3.jpg.
  const Sample jpeg = dataset->get(0);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(jpeg.label(), -1);
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(1, 32, 32)), 0, 8.0 / 255));  // lossy
  EXPECT_TRUE(dataset->get(1).input.equal(as_input(pattern(2, 4, 6))));
  // Grey is repeated over three channels and alpha is dropped, as PIL's convert("RGB").
  EXPECT_TRUE(dataset->get(2).input.equal(as_input(grey.expand({3, 4, 3}))));
  EXPECT_TRUE(dataset->get(3).input.equal(as_input(pattern(3, 5, 5))));

  // Prepared: the next construction neither downloads nor needs the archive.
  fs::remove(root / "Imagenet.tar.gz");
  EXPECT_EQ(make_dataset("tiny-imagenet-crop", R"({"root": ")" + root.string() + R"("})")->size(), 4);
  EXPECT_EQ(served.requests("Imagenet.tar.gz"), 1);
}

TEST(TinyImagenetCrop, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("tiny_imagenet_crop_missing");
  try {
    make_dataset("tiny-imagenet-crop", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tiny-imagenet-crop: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "Imagenet/test").string()), std::string::npos) << m;
    EXPECT_NE(m.find("dropbox.com/s/raw/avgm2u562itwpkl/Imagenet.tar.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("7c0827e4246c3718a5ee076e999e52e5"), std::string::npos) << m;
  }
}

TEST(TinyImagenetCrop, AnEmptyFolderIsAnErrorNamingIt) {
  const fs::path root = temp_dir("tiny_imagenet_crop_empty");
  fs::create_directories(root / "Imagenet/test");
  try {
    make_dataset("tiny-imagenet-crop", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tiny-imagenet-crop"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "Imagenet/test").string()), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
