// imagenet-c on a miniature of the real blur.tar (<corruption>/<severity>/<wnid>/
// ILSVRC2012_val_<n>.JPEG for the four blur corruptions), served through $OOD_RESOURCES
// and extracted into root/ImageNet-C/.
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

// A 3 x 4 RGB image whose every value is `value` (one per (corruption, severity, file)).
at::Tensor flat(std::int64_t value) { return at::full({3, 4, 3}, value, at::kByte); }

const std::vector<std::string> kBlur = {"defocus_blur", "glass_blur", "motion_blur", "zoom_blur"};

// blur.tar with two classes at every severity of every blur corruption, one image each
// (value 50 * corruption + 10 * severity + class), and a second file in one folder.
fs::path blur_tar(const fs::path& dir) {
  const fs::path tree = dir / "tree";
  for (std::size_t c = 0; c < kBlur.size(); ++c)
    for (int s = 1; s <= 5; ++s) {
      const fs::path severity = tree / kBlur[c] / std::to_string(s);
      write_png_file(severity / "n01443537/ILSVRC2012_val_00000236.JPEG", flat(50 * c + 10 * s + 1));
      write_png_file(severity / "n01440764/ILSVRC2012_val_00000293.JPEG", flat(50 * c + 10 * s));
    }
  write_png_file(tree / "glass_blur/3/n01440764/ILSVRC2012_val_00002138.JPEG", flat(255));
  std::vector<ArchiveEntry> entries;
  for (const auto& c : kBlur)
    for (auto& e : tree_entries(tree, c)) entries.push_back(std::move(e));
  write_archive(dir / "blur.tar", entries);
  return dir / "blur.tar";
}

std::string params(const fs::path& root, const std::string& more) {
  return R"({"root": ")" + root.string() + R"(", "subset": "blur")" + more + "}";
}

TEST(ImageNetC, DownloadsTheSubsetIntoImageNetCAndReadsEveryCorruptionAndSeverity) {
  const fs::path dir = temp_dir("imagenet_c");
  ServedResources served(dir / "server");
  served.serve(blur_tar(dir));
  const fs::path root = dir / "root";
  auto blur = make_dataset("imagenet-c", params(root, R"(, "download": true)"));
  EXPECT_TRUE(fs::is_directory(root / "ImageNet-C/zoom_blur/5/n01443537"));
  ASSERT_EQ(blur->size(), 4 * 5 * 2 + 1);
  EXPECT_TRUE(blur->labels().equal(at::full({41}, -1, at::kLong)));
  // Order: corruption, severity, wnid, file.
  const at::Tensor first = blur->get(0).input;  // defocus_blur/1/n01440764
  EXPECT_EQ(first.sizes(), (std::vector<std::int64_t>{3, 3, 4}));
  EXPECT_TRUE(first.equal(at::full({3, 3, 4}, 10 / 255.0f)));
  EXPECT_EQ(blur->get(0).label(), -1);
  EXPECT_TRUE(blur->get(1).input.equal(at::full({3, 3, 4}, 11 / 255.0f)));     // defocus_blur/1/n01443537
  EXPECT_TRUE(blur->get(10).input.equal(at::full({3, 3, 4}, 60 / 255.0f)));    // glass_blur/1/n01440764
  EXPECT_TRUE(blur->get(15).input.equal(at::full({3, 3, 4}, 255 / 255.0f)));   // glass_blur/3/..._00002138
  EXPECT_TRUE(blur->get(40).input.equal(at::full({3, 3, 4}, 201 / 255.0f)));   // zoom_blur/5/n01443537

  // Prepared: the next construction neither downloads nor needs the tar.
  fs::remove(root / "blur.tar");
  EXPECT_EQ(make_dataset("imagenet-c", params(root, ""))->size(), 41);
  EXPECT_EQ(served.requests("blur.tar"), 1);
}

TEST(ImageNetC, CorruptionAndSeveritySelectOneFolder) {
  const fs::path dir = temp_dir("imagenet_c_select");
  ServedResources served(dir / "server");
  served.serve(blur_tar(dir));
  const fs::path root = dir / "root";
  auto glass3 = make_dataset("imagenet-c", params(root, R"(, "download": true, "corruption": "glass_blur", "severity": 3)"));
  ASSERT_EQ(glass3->size(), 3);
  EXPECT_TRUE(glass3->get(0).input.equal(at::full({3, 3, 4}, 80 / 255.0f)));
  EXPECT_TRUE(glass3->get(1).input.equal(at::full({3, 3, 4}, 1.0f)));
  EXPECT_TRUE(glass3->get(2).input.equal(at::full({3, 3, 4}, 81 / 255.0f)));
  EXPECT_EQ(make_dataset("imagenet-c", params(root, R"(, "severity": 2)"))->size(), 4 * 2);
  EXPECT_EQ(make_dataset("imagenet-c", params(root, R"(, "corruption": "zoom_blur")"))->size(), 5 * 2);
}

TEST(ImageNetC, ACorruptionOfAnotherSubsetOrASeverityOutOfRangeIsRejected) {
  const fs::path root = temp_dir("imagenet_c_params");
  try {
    make_dataset("imagenet-c", params(root, R"(, "corruption": "fog")"));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("corruption 'fog' is not in subset 'blur'"), std::string::npos) << m;
    EXPECT_NE(m.find("glass_blur"), std::string::npos) << m;
  }
  EXPECT_THROW(make_dataset("imagenet-c", params(root, R"(, "severity": 6)")), InvalidArgument);
  EXPECT_THROW(make_dataset("imagenet-c", params(root, R"(, "corruption": "defocus")")), InvalidArgument);
  EXPECT_THROW(make_dataset("imagenet-c", R"({"root": ")" + root.string() + R"(", "subset": "snow"})"),
               InvalidArgument);
}

TEST(ImageNetC, MissingDataNamesTheSubsetTarAndItsChecksum) {
  const fs::path root = temp_dir("imagenet_c_missing");
  try {
    make_dataset("imagenet-c", R"({"root": ")" + root.string() + R"(", "subset": "weather"})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet-c: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "ImageNet-C/frost").string()), std::string::npos) << m;
    EXPECT_NE(m.find("https://zenodo.org/record/2235448/files/weather.tar"), std::string::npos) << m;
    EXPECT_NE(m.find("33ffea4db4d93fe4a428c40a6ce0c25d"), std::string::npos) << m;
  }
}

TEST(ImageNetC, AMissingSeverityFolderIsNamed) {
  const fs::path root = temp_dir("imagenet_c_severity");
  for (int s = 1; s <= 4; ++s)  // severity 5 missing
    write_png_file(root / "ImageNet-C/gaussian_noise" / std::to_string(s) / "n01440764/a.JPEG", flat(s));
  for (const char* c : {"impulse_noise", "shot_noise"})
    for (int s = 1; s <= 5; ++s) write_png_file(root / "ImageNet-C" / c / std::to_string(s) / "n01440764/a.JPEG", flat(s));
  EXPECT_EQ(make_dataset("imagenet-c", R"({"root": ")" + root.string() + R"(", "subset": "noise", "severity": 4})")->size(), 3);
  try {
    make_dataset("imagenet-c", R"({"root": ")" + root.string() + R"(", "subset": "noise"})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet-c: "), std::string::npos) << m;
    EXPECT_NE(m.find((root / "ImageNet-C/gaussian_noise/5").string()), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
