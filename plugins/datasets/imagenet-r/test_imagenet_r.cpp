// imagenet-r on a miniature of the real archive (imagenet-r.tar holding
// imagenet-r/README.txt and imagenet-r/<wnid>/<file>.jpg), served through
// $OOD_RESOURCES.
#include <fstream>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

// Writes a PNG, creating its folder first.
void write_png_file(const fs::path& file, const at::Tensor& hwc) {
  fs::create_directories(file.parent_path());
  io::write_png(file, hwc);
}

// An h x w image with `channels` channels whose pixel (y, x) is (10 * index + y + x) in
// every channel but the last, which holds 2 * x.
at::Tensor pattern(std::int64_t index, std::int64_t h, std::int64_t w, std::int64_t channels = 3) {
  at::Tensor img = at::zeros({h, w, channels}, at::kByte);
  const at::Tensor ramp = at::arange(h).unsqueeze(1) + at::arange(w).unsqueeze(0) + 10 * index;
  for (std::int64_t c = 0; c + 1 < channels; ++c) img.select(2, c).copy_(ramp);
  img.select(2, channels - 1).copy_((2 * at::arange(w)).unsqueeze(0).expand({h, w}));
  return img;
}

at::Tensor as_input(const at::Tensor& hwc) { return hwc.permute({2, 0, 1}).to(at::kFloat) / 255; }

std::string params(const fs::path& root, bool download) {
  return R"({"root": ")" + root.string() + R"(", "download": )" + (download ? "true" : "false") + "}";
}

TEST(ImageNetR, DownloadsTheArchiveAndLabelsByClassFolder) {
  const fs::path dir = temp_dir("imagenet_r");
  const fs::path tree = dir / "tree";
  const fs::path a = tree / "imagenet-r";
  fs::create_directories(a);
  // The real archive's class list, a file beside the class folders: no sample.
  std::ofstream(a / "README.txt") << "n01498041 stingray\nn01531178 goldfinch\n";
  // Written in reverse order: classes and files are sorted.
  write_png_file(a / "n01531178/sketch_3.jpg", pattern(3, 4, 6));  // PNG named .jpg
  write_png_file(a / "n01498041/cartoon_12.jpg", pattern(2, 5, 3, 1));  // grey
  write_png_file(a / "n01498041/art_0.JPEG", pattern(1, 3, 4));
  // Not samples for pytorch-ood's case-sensitive ".jpg"/".JPEG" test:
  write_png_file(a / "n01498041/upper.JPG", pattern(9, 2, 2));
  write_png_file(a / "n01498041/lower.jpeg", pattern(9, 2, 2));
  write_png_file(a / "n01498041/other.png", pattern(9, 2, 2));
  write_archive(dir / "imagenet-r.tar", tree_entries(tree, "imagenet-r"));

  ServedResources served(dir / "server");
  served.serve(dir / "imagenet-r.tar");
  const fs::path root = dir / "root";
  auto set = make_dataset("imagenet-r", params(root, true));
  ASSERT_EQ(set->size(), 3);
  EXPECT_TRUE(set->labels().equal(at::tensor({0, 0, 1}, at::kLong)));
  EXPECT_EQ(set->info().classes, (std::vector<std::string>{"n01498041", "n01531178"}));
  EXPECT_EQ(set->info().task, Task::Classification);

  const Sample first = set->get(0);  // art_0.JPEG
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 3, 4))));
  EXPECT_EQ(first.label(), 0);
  const Sample grey = set->get(1);  // kept as stored: one channel, no RGB conversion
  EXPECT_EQ(grey.input.sizes(), (std::vector<std::int64_t>{1, 5, 3}));
  EXPECT_TRUE(grey.input.equal(as_input(pattern(2, 5, 3, 1))));
  const Sample third = set->get(2);
  EXPECT_TRUE(third.input.equal(as_input(pattern(3, 4, 6))));
  EXPECT_EQ(third.label(), 1);

  // Prepared: the next construction neither downloads nor needs the archive.
  fs::remove(root / "imagenet-r.tar");
  EXPECT_EQ(make_dataset("imagenet-r", params(root, false))->size(), 3);
  EXPECT_EQ(served.requests("imagenet-r.tar"), 1);
}

TEST(ImageNetR, MissingDataNamesTheArchiveUrlAndChecksum) {
  const fs::path root = temp_dir("imagenet_r_missing");
  try {
    make_dataset("imagenet-r", params(root, false));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet-r: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "imagenet-r").string()), std::string::npos) << m;
    EXPECT_NE(m.find("https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar"), std::string::npos) << m;
    EXPECT_NE(m.find("a61312130a589d0ca1a8fca1f2bd3337"), std::string::npos) << m;
  }
}

TEST(ImageNetR, AClassWithoutImagesIsNamed) {
  const fs::path root = temp_dir("imagenet_r_empty_class");
  write_png_file(root / "imagenet-r/n01498041/a.jpg", pattern(0, 2, 2));
  write_png_file(root / "imagenet-r/n01531178/only.jpeg", pattern(0, 2, 2));  // not a sample
  try {
    make_dataset("imagenet-r", params(root, false));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet-r: "), std::string::npos) << m;
    EXPECT_NE(m.find("n01531178"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
