// tiny-imagenet on a miniature of tiny-imagenet-200.zip (train/<wnid>/images with the
// per-class box files, val/val_annotations.txt with tab-separated fields, val/images,
// test/images, wnids.txt, words.txt), served through $OOD_RESOURCES.
#include <fstream>

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
using folder_set::put_text;
using folder_set::as_input;

std::string params(const fs::path& root, const std::string& rest = "") {
  return R"({"root": ")" + root.string() + "\"" + rest + "}";
}

// The tree of the real zip, in miniature: two classes (created in reverse order, so the
// dataset must sort them), PNG content in .JPEG names for exact pixel values, and one
// greyscale JPEG (the real set has some).
void write_tree(const fs::path& base) {
  const fs::path t = base / "tiny-imagenet-200";
  put_text(t / "wnids.txt", "n01629819\nn01443537\n");
  put_text(t / "words.txt", "n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n");
  put_png(t / "train/n01629819/images/n01629819_0.JPEG", pattern(3, 64, 64));
  put_text(t / "train/n01629819/n01629819_boxes.txt", "n01629819_0.JPEG\t0\t0\t63\t63\n");
  put_png(t / "train/n01443537/images/n01443537_1.JPEG", pattern(2, 64, 64));
  put_png(t / "train/n01443537/images/n01443537_0.JPEG", pattern(1, 64, 64));
  put_text(t / "train/n01443537/n01443537_boxes.txt", "n01443537_0.JPEG\t0\t0\t63\t63\n");
  put_png(t / "val/images/val_0.JPEG", pattern(4, 64, 64));
  put_jpeg(t / "val/images/val_1.JPEG", at::full({64, 64, 1}, 128, at::kByte));
  put_png(t / "val/images/val_2.JPEG", pattern(6, 64, 64));
  put_text(t / "val/val_annotations.txt",
           "val_2.JPEG\tn01443537\t0\t32\t44\t62\n"
           "val_0.JPEG\tn01629819\t52\t55\t57\t59\n"
           "val_1.JPEG\tn01443537\t0\t0\t63\t63\n");
  put_png(t / "test/images/test_1.JPEG", pattern(8, 64, 64));
  put_png(t / "test/images/test_0.JPEG", pattern(7, 64, 64));
}

TEST(TinyImagenet, DownloadsTheZipAndReadsEachSubsetWithItsLabels) {
  const fs::path dir = temp_dir("tiny_imagenet");
  write_tree(dir / "tree");
  write_archive(dir / "tiny-imagenet-200.zip", tree_entries(dir / "tree", "tiny-imagenet-200"));
  ServedResources served(dir / "server");
  served.serve(dir / "tiny-imagenet-200.zip");
  const fs::path root = dir / "root";

  auto train = make_dataset("tiny-imagenet", params(root, R"(, "download": true, "subset": "train")"));
  EXPECT_EQ(train->info().classes, (std::vector<std::string>{"n01443537", "n01629819"}));
  ASSERT_EQ(train->size(), 3);
  EXPECT_TRUE(train->labels().equal(at::tensor({0, 0, 1}, at::kLong)));
  const Sample first = train->get(0);  // n01443537_0
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 64, 64}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 64, 64))));
  EXPECT_EQ(first.label(), 0);
  EXPECT_TRUE(train->get(2).input.equal(as_input(pattern(3, 64, 64))));

  // val: the annotation file's order and classes; the greyscale JPEG keeps one channel.
  auto val = make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")"));
  ASSERT_EQ(val->size(), 3);
  EXPECT_TRUE(val->labels().equal(at::tensor({0, 1, 0}, at::kLong)));
  EXPECT_TRUE(val->get(0).input.equal(as_input(pattern(6, 64, 64))));
  EXPECT_TRUE(val->get(1).input.equal(as_input(pattern(4, 64, 64))));
  const Sample grey = val->get(2);
  EXPECT_EQ(grey.input.sizes(), (std::vector<std::int64_t>{1, 64, 64}));
  EXPECT_TRUE(all_close(grey.input, at::full({1, 64, 64}, 128.0 / 255), 0, 2.0 / 255));
  EXPECT_EQ(val->info().classes.size(), 2u);

  auto test = make_dataset("tiny-imagenet", params(root, R"(, "subset": "test")"));
  ASSERT_EQ(test->size(), 2);
  EXPECT_TRUE(test->labels().equal(at::full({2}, -1, at::kLong)));
  EXPECT_TRUE(test->get(0).input.equal(as_input(pattern(7, 64, 64))));

  EXPECT_EQ(served.requests("tiny-imagenet-200.zip"), 1);
}

TEST(TinyImagenet, TheDefaultSubsetIsTrainAndABadOneIsRejectedByTheSchema) {
  const fs::path root = temp_dir("tiny_imagenet_subsets");
  write_tree(root);
  EXPECT_EQ(make_dataset("tiny-imagenet", params(root))->size(), 3);
  try {
    make_dataset("tiny-imagenet", params(root, R"(, "subset": "validation")"));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("subset"), std::string::npos) << e.what();
  }
}

TEST(TinyImagenet, AMalformedAnnotationLineIsNamedWithItsNumber) {
  const fs::path root = temp_dir("tiny_imagenet_malformed");
  write_tree(root);
  const fs::path annotations = root / "tiny-imagenet-200/val/val_annotations.txt";
  put_text(annotations, "val_2.JPEG\tn01443537\t0\t32\t44\t62\nval_0.JPEG\tn01629819\t52\t55\n");
  try {
    make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tiny-imagenet: " + annotations.string() + ":2:"), std::string::npos) << m;
    EXPECT_NE(m.find("6 whitespace-separated fields"), std::string::npos) << m;
  }
  // Blank lines hold no sample; an unknown class and a path instead of a name are errors.
  put_text(annotations, "val_2.JPEG n01443537 0 32 44 62\r\n\nval_0.JPEG  n01629819 52 55 57 59\n");
  EXPECT_EQ(make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")"))->size(), 2);
  put_text(annotations, "val_2.JPEG\tn99999999\t0\t32\t44\t62\n");
  try {
    make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(annotations.string() + ":1:"), std::string::npos) << m;
    EXPECT_NE(m.find("n99999999"), std::string::npos) << m;
  }
  put_text(annotations, "../../train/n01443537/images/n01443537_0.JPEG\tn01443537\t0\t32\t44\t62\n");
  EXPECT_THROW(make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")")), FileError);
}

TEST(TinyImagenet, AnAnnotatedImageThatIsMissingIsNamed) {
  const fs::path root = temp_dir("tiny_imagenet_missing_image");
  write_tree(root);
  fs::remove(root / "tiny-imagenet-200/val/images/val_0.JPEG");
  try {
    make_dataset("tiny-imagenet", params(root, R"(, "subset": "val")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("val_0.JPEG"), std::string::npos) << e.what();
  }
}

TEST(TinyImagenet, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("tiny_imagenet_missing");
  try {
    make_dataset("tiny-imagenet", params(root, R"(, "subset": "test")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tiny-imagenet: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "tiny-imagenet-200/test").string()), std::string::npos) << m;
    EXPECT_NE(m.find("cs231n.stanford.edu/tiny-imagenet-200.zip"), std::string::npos) << m;
    EXPECT_NE(m.find("90528d7ca1a48142e341f4ef8d21d0de"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
