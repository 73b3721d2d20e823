// imagenet on a miniature of the tree torchvision.datasets.ImageNet creates
// (root/train/<wnid>/<wnid>_<n>.JPEG, root/val/<wnid>/ILSVRC2012_val_<n>.JPEG, meta.bin
// beside them); nothing is downloaded.
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

// An h x w image with `channels` channels; channel c of pixel (y, x) is 10 * index + 3 * c + y + x.
at::Tensor pattern(std::int64_t index, std::int64_t h, std::int64_t w, std::int64_t channels) {
  const at::Tensor ramp = at::arange(h).unsqueeze(1) + at::arange(w).unsqueeze(0) + 10 * index;
  std::vector<at::Tensor> planes;
  for (std::int64_t c = 0; c < channels; ++c) planes.push_back(ramp + 3 * c);
  return at::stack(planes, 2).to(at::kByte);
}

std::string params(const fs::path& root, const std::string& split) {
  return R"({"root": ")" + root.string() + R"(", "split": ")" + split + R"("})";
}

fs::path miniature_tree(const std::string& name) {
  const fs::path root = temp_dir(name);
  std::ofstream(root / "meta.bin") << "not read";  // torchvision's class-name cache
  // Written in reverse order: classes and files are sorted.
  put_png(root / "train/n01443537/n01443537_10007.JPEG", pattern(4, 3, 3, 3));
  put_png(root / "train/n01440764/n01440764_10043.JPEG", pattern(3, 4, 5, 4));  // RGBA
  put_png(root / "train/n01440764/n01440764_10026.JPEG", pattern(2, 5, 4, 1));  // greyscale
  put_png(root / "train/n01440764/extra/n01440764_9.png", pattern(1, 2, 2, 3));  // recursive, any case
  std::ofstream(root / "train/n01440764/notes.txt") << "not an image";
  put_png(root / "val/n01443537/ILSVRC2012_val_00000236.JPEG", pattern(6, 3, 4, 3));
  put_png(root / "val/n01440764/ILSVRC2012_val_00000293.JPEG", pattern(5, 4, 3, 3));
  return root;
}

TEST(ImageNet, ReadsTheTrainTreeAsTorchvisionWithRgbConversion) {
  const fs::path root = miniature_tree("imagenet_train");
  auto train = make_dataset("imagenet", params(root, "train"));
  ASSERT_EQ(train->size(), 4);
  EXPECT_TRUE(train->labels().equal(at::tensor({0, 0, 0, 1}, at::kLong)));
  EXPECT_EQ(train->info().classes, (std::vector<std::string>{"n01440764", "n01443537"}));

  // torchvision's order: the class folder's files, then its sub-folders' files.
  const Sample grey = train->get(0);  // n01440764_10026.JPEG: grey repeated into 3 channels
  EXPECT_EQ(grey.input.sizes(), (std::vector<std::int64_t>{3, 5, 4}));
  EXPECT_TRUE(grey.input.equal(as_input(pattern(2, 5, 4, 1)).expand({3, 5, 4})));
  EXPECT_EQ(grey.label(), 0);
  const Sample rgba = train->get(1);  // n01440764_10043.JPEG: alpha dropped
  EXPECT_TRUE(rgba.input.equal(as_input(pattern(3, 4, 5, 4)).slice(0, 0, 3)));
  EXPECT_TRUE(train->get(2).input.equal(as_input(pattern(1, 2, 2, 3))));  // extra/n01440764_9.png
  const Sample last = train->get(3);
  EXPECT_TRUE(last.input.equal(as_input(pattern(4, 3, 3, 3))));
  EXPECT_EQ(last.label(), 1);
}

TEST(ImageNet, ReadsTheValidationTree) {
  const fs::path root = miniature_tree("imagenet_val");
  auto val = make_dataset("imagenet", params(root, "val"));
  ASSERT_EQ(val->size(), 2);
  EXPECT_TRUE(val->labels().equal(at::tensor({0, 1}, at::kLong)));
  EXPECT_TRUE(val->get(0).input.equal(as_input(pattern(5, 4, 3, 3))));
  EXPECT_TRUE(val->get(1).input.equal(as_input(pattern(6, 3, 4, 3))));
}

TEST(ImageNet, DecodesRealJpegs) {
  const fs::path root = temp_dir("imagenet_jpeg");
  fs::create_directories(root / "val/n01440764");
  io::write_jpeg(root / "val/n01440764/ILSVRC2012_val_00000293.JPEG", pattern(0, 8, 16, 1), 100);
  const Sample s = make_dataset("imagenet", params(root, "val"))->get(0);
  EXPECT_EQ(s.input.sizes(), (std::vector<std::int64_t>{3, 8, 16}));
  EXPECT_TRUE(all_close(s.input[0], as_input(pattern(0, 8, 16, 1))[0], 0, 3.0 / 255));
}

TEST(ImageNet, MissingTreeSaysWhereToGetTheArchives) {
  const fs::path root = temp_dir("imagenet_missing");
  try {
    make_dataset("imagenet", params(root, "val"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet: data not found: " + (root / "val").string()), std::string::npos) << m;
    for (const char* expected : {"ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e",
                                 "ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622",
                                 "ILSVRC2012_devkit_t12.tar.gz", "fa75699e90414af021442c21a62c3abf",
                                 "https://image-net.org", "/<wnid>/*.JPEG"})
      EXPECT_NE(m.find(expected), std::string::npos) << expected << " not in: " << m;
  }
}

TEST(ImageNet, ASplitWithoutClassFoldersIsNamed) {
  const fs::path root = temp_dir("imagenet_flat");
  put_png(root / "val/ILSVRC2012_val_00000001.JPEG", pattern(0, 2, 2, 3));  // not yet sorted into wnids
  try {
    make_dataset("imagenet", params(root, "val"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("imagenet: "), std::string::npos) << m;
    EXPECT_NE(m.find((root / "val").string()), std::string::npos) << m;
  }
}

TEST(ImageNet, AnUnknownSplitIsRejected) {
  EXPECT_THROW(make_dataset("imagenet", params(temp_dir("imagenet_split"), "test")), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
