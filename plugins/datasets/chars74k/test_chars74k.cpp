// chars74k on miniatures of the real archives (EnglishImg.tgz holding English/Img/
// GoodImg/{Bmp,Msk}/SampleNNN/imgNNN-NNNNN.png and English/Img/BadImag/...; ListsTXT.tgz
// holding ListsTXT/*.m, which is not read), both served through $OOD_RESOURCES into
// root/chars74k/.
#include <fstream>

#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::as_input;
using folder_set::put_png;

// An h x w RGB image whose pixel (y, x) is (value, y, x).
at::Tensor pattern(std::int64_t value, std::int64_t h, std::int64_t w) {
  at::Tensor img = at::zeros({h, w, 3}, at::kByte);
  img.select(2, 0).fill_(value);
  img.select(2, 1).copy_(at::arange(h).unsqueeze(1).expand({h, w}));
  img.select(2, 2).copy_(at::arange(w).unsqueeze(0).expand({h, w}));
  return img;
}

std::string params(const fs::path& root, bool download) {
  return R"({"root": ")" + root.string() + R"(", "download": )" + (download ? "true" : "false") + "}";
}

TEST(Chars74k, DownloadsBothArchivesAndLabelsDenselyBySampleFolder) {
  const fs::path dir = temp_dir("chars74k");
  const fs::path tree = dir / "tree";
  const fs::path good = tree / "English/Img/GoodImg";
  // Sample001 = '0', Sample011 = 'A', Sample062 = 'z'; written in reverse order.
  put_png(good / "Bmp/Sample062/img062-00002.png", pattern(40, 3, 2));
  put_png(good / "Bmp/Sample011/img011-00001.png", pattern(30, 2, 3));
  put_png(good / "Bmp/Sample001/img001-00012.png", pattern(20, 4, 4));
  put_png(good / "Bmp/Sample001/img001-00003.png", pattern(10, 3, 5));
  put_png(good / "Msk/Sample001/img001-00003.png", pattern(255, 3, 5));  // masks: no samples
  put_png(tree / "English/Img/BadImag/Bmp/Sample001/img001-00001.png", pattern(99, 2, 2));  // not read
  write_archive(dir / "EnglishImg.tgz", tree_entries(tree, "English"));
  // ListsTXT.tgz holds ListsTXT/list_English_Img.m and its siblings (OpenCV's TR_chars
  // documentation), beside English/ rather than inside it.
  const fs::path lists = dir / "lists";
  fs::create_directories(lists / "ListsTXT");
  std::ofstream(lists / "ListsTXT/list_English_Img.m") << "list.ALLnames = ['GoodImg/Bmp/Sample001/img001-00003'];\n";
  write_archive(dir / "ListsTXT.tgz", tree_entries(lists, "ListsTXT"));

  ServedResources served(dir / "server");
  served.serve(dir / "EnglishImg.tgz");
  served.serve(dir / "ListsTXT.tgz");
  const fs::path root = dir / "root";
  auto chars = make_dataset("chars74k", params(root, true));
  EXPECT_TRUE(fs::is_regular_file(root / "chars74k/EnglishImg.tgz"));
  EXPECT_TRUE(fs::is_regular_file(root / "chars74k/ListsTXT/list_English_Img.m"));
  ASSERT_EQ(chars->size(), 4);
  EXPECT_TRUE(chars->labels().equal(at::tensor({0, 0, 1, 2}, at::kLong)));
  EXPECT_EQ(chars->info().classes, (std::vector<std::string>{"0", "A", "z"}));
  const Sample first = chars->get(0);  // Sample001/img001-00003.png
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 3, 5}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(10, 3, 5))));
  EXPECT_EQ(first.label(), 0);
  EXPECT_TRUE(chars->get(1).input.equal(as_input(pattern(20, 4, 4))));
  EXPECT_TRUE(chars->get(2).input.equal(as_input(pattern(30, 2, 3))));
  const Sample last = chars->get(3);
  EXPECT_TRUE(last.input.equal(as_input(pattern(40, 3, 2))));
  EXPECT_EQ(last.label(), 2);

  // Prepared: the next construction neither downloads nor needs the archives.
  fs::remove(root / "chars74k/EnglishImg.tgz");
  fs::remove(root / "chars74k/ListsTXT.tgz");
  EXPECT_EQ(make_dataset("chars74k", params(root, false))->size(), 4);
  EXPECT_EQ(served.requests("EnglishImg.tgz"), 1);
  EXPECT_EQ(served.requests("ListsTXT.tgz"), 1);
}

TEST(Chars74k, AllSixtyTwoFoldersKeepTheirLabels) {
  const fs::path root = temp_dir("chars74k_all");
  for (int n = 1; n <= 62; ++n) {
    char folder[16];
    std::snprintf(folder, sizeof folder, "Sample%03d", n);
    put_png(root / "chars74k/English/Img/GoodImg/Bmp" / folder / "a.png", pattern(n, 1, 1));
  }
  auto chars = make_dataset("chars74k", params(root, false));
  ASSERT_EQ(chars->size(), 62);
  EXPECT_TRUE(chars->labels().equal(at::arange(62, at::kLong)));
  const auto classes = chars->info().classes;
  ASSERT_EQ(classes.size(), 62u);
  EXPECT_EQ(classes[0], "0");
  EXPECT_EQ(classes[9], "9");
  EXPECT_EQ(classes[10], "A");
  EXPECT_EQ(classes[35], "Z");
  EXPECT_EQ(classes[36], "a");
  EXPECT_EQ(classes[61], "z");
}

TEST(Chars74k, MissingDataNamesBothArchives) {
  const fs::path root = temp_dir("chars74k_missing");
  try {
    make_dataset("chars74k", params(root, false));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("chars74k: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "chars74k/English/Img/GoodImg/Bmp").string()), std::string::npos) << m;
    EXPECT_NE(m.find("http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/EnglishImg.tgz"), std::string::npos) << m;
    EXPECT_NE(m.find("85d157e0c58f998e1cda8def62bcda0d"), std::string::npos) << m;
    EXPECT_NE(m.find("ListsTXT.tgz"), std::string::npos) << m;
  }
}

TEST(Chars74k, AFolderThatIsNoSampleFolderIsNamed) {
  for (const char* folder : {"Sample063", "Sample000", "Samples", "Extra"}) {
    const fs::path root = temp_dir("chars74k_bad_folder");
    put_png(root / "chars74k/English/Img/GoodImg/Bmp/Sample001/a.png", pattern(1, 1, 1));
    put_png(root / "chars74k/English/Img/GoodImg/Bmp" / folder / "a.png", pattern(1, 1, 1));
    try {
      make_dataset("chars74k", params(root, false));
      ADD_FAILURE() << "no error for " << folder;
    } catch (const FileError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("chars74k: "), std::string::npos) << m;
      EXPECT_NE(m.find(folder), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace ood::test
