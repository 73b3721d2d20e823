// mvtec-ad on a miniature of the real archive (mvtec_anomaly_detection.tar.xz holding
// license.txt, readme.txt and <category>/{train,test}/<defect>/NNN.png with
// <category>/ground_truth/<defect>/NNN_mask.png), served through $OOD_RESOURCES without
// a checksum, as the real one has none.
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

// An h x w image with `channels` channels whose pixel (y, x) is value + y + x in each.
at::Tensor pattern(std::int64_t value, std::int64_t h, std::int64_t w, std::int64_t channels = 3) {
  const at::Tensor ramp = at::arange(h).unsqueeze(1) + at::arange(w).unsqueeze(0) + value;
  return ramp.unsqueeze(2).expand({h, w, channels}).contiguous().to(at::kByte);
}

// A grey 0/255 mask [h, w, 1] with the given pixels set.
at::Tensor mask(std::int64_t h, std::int64_t w, const std::vector<std::pair<int, int>>& defective, int value = 255) {
  at::Tensor m = at::zeros({h, w, 1}, at::kByte);
  for (const auto& [y, x] : defective) m[y][x][0] = value;
  return m;
}

// The int64 target of a mask: -1 where defective.
at::Tensor target_of(const at::Tensor& m) { return -(m.squeeze(2) > 0).to(at::kLong); }

const std::vector<std::string> kOtherCategories = {
    "cable", "capsule", "carpet", "hazelnut", "leather", "metal_nut", "pill",
    "screw", "tile", "toothbrush", "transistor", "wood", "zipper"};

struct Miniature {
  at::Tensor bottle_broken_0, bottle_broken_1, grid_bent_0;
};

Miniature write_miniature(const fs::path& tree) {
  Miniature m;
  m.bottle_broken_0 = mask(4, 5, {{0, 0}, {3, 4}});
  m.bottle_broken_1 = mask(4, 5, {{1, 2}}, 128);  // any non-zero value is defective
  m.grid_bent_0 = mask(3, 3, {{2, 1}});
  std::ofstream(tree / "license.txt") << "CC BY-NC-SA 4.0\n";
  std::ofstream(tree / "readme.txt") << "MVTec AD\n";
  put_png(tree / "bottle/train/good/000.png", pattern(10, 4, 5));
  put_png(tree / "bottle/train/good/001.png", pattern(20, 4, 5));
  put_png(tree / "bottle/test/good/000.png", pattern(30, 4, 5));
  put_png(tree / "bottle/test/broken_large/001.png", pattern(50, 4, 5));
  put_png(tree / "bottle/test/broken_large/000.png", pattern(40, 4, 5));
  put_png(tree / "bottle/ground_truth/broken_large/001_mask.png", m.bottle_broken_1);
  put_png(tree / "bottle/ground_truth/broken_large/000_mask.png", m.bottle_broken_0);
  // A stray mask that pairing by sorted position would give to 001.png.
  put_png(tree / "bottle/ground_truth/broken_large/000a_mask.png", mask(4, 5, {{0, 1}}));
  put_png(tree / "grid/train/good/000.png", pattern(60, 3, 3, 1));  // grid is greyscale
  put_png(tree / "grid/test/bent/000.png", pattern(70, 3, 3, 1));
  put_png(tree / "grid/ground_truth/bent/000_mask.png", m.grid_bent_0);
  // The other 13 categories, one good image per split each (value 100 + category).
  for (std::size_t c = 0; c < kOtherCategories.size(); ++c)
    for (const char* split : {"train", "test"})
      put_png(tree / kOtherCategories[c] / split / "good/000.png", pattern(100 + c, 2, 2));
  return m;
}

std::string params(const fs::path& root, const std::string& split, const std::string& more = "") {
  return R"({"root": ")" + root.string() + R"(", "split": ")" + split + "\"" + more + "}";
}

TEST(MvtecAd, DownloadsWithoutChecksumAndMarksDefectivePixelsMinusOne) {
  const fs::path dir = temp_dir("mvtec_ad");
  const fs::path tree = dir / "tree";
  fs::create_directories(tree);
  const Miniature m = write_miniature(tree);
  std::vector<ArchiveEntry> entries;
  for (const fs::path& top : fs::directory_iterator(tree))
    for (auto& e : tree_entries(tree, top.filename().string())) entries.push_back(std::move(e));
  write_archive(dir / "mvtec_anomaly_detection.tar.xz", entries);

  ServedResources served(dir / "server");
  served.serve(dir / "mvtec_anomaly_detection.tar.xz");
  {  // the real archive has no checksum: serve it with none
    nlohmann::json overrides;
    std::ifstream(served.overrides_file()) >> overrides;
    overrides["mvtec_anomaly_detection.tar.xz"].erase("md5");
    std::ofstream(served.overrides_file()) << overrides.dump();
  }
  const fs::path root = dir / "root";
  auto all = make_dataset("mvtec-ad", params(root, "test", R"(, "download": true)"));
  EXPECT_TRUE(fs::is_regular_file(root / "mvtech-ad/mvtec_anomaly_detection.tar.xz"));
  EXPECT_TRUE(fs::is_regular_file(root / "mvtech-ad/license.txt"));
  EXPECT_EQ(all->info().task, Task::Segmentation);
  // Categories in pytorch-ood's order: bottle (broken_large/000, 001, good/000), cable,
  // capsule, carpet (good/000 each), grid (bent/000), hazelnut ... zipper (good/000 each).
  ASSERT_EQ(all->size(), 3 + 13 + 1);
  at::Tensor expected_labels = at::zeros({17}, at::kLong);
  expected_labels[0] = -1;
  expected_labels[1] = -1;
  expected_labels[6] = -1;
  EXPECT_TRUE(all->labels().equal(expected_labels));
  EXPECT_TRUE(all->get(3).input.equal(as_input(pattern(100, 2, 2))));   // cable
  EXPECT_TRUE(all->get(6).input.equal(as_input(pattern(70, 3, 3, 1))));  // grid/test/bent/000.png
  EXPECT_TRUE(all->get(16).input.equal(as_input(pattern(112, 2, 2))));  // zipper

  auto test = make_dataset("mvtec-ad", params(root, "test", R"(, "subset": "bottle")"));
  ASSERT_EQ(test->size(), 3);
  EXPECT_TRUE(test->labels().equal(at::tensor({-1, -1, 0}, at::kLong)));

  const Sample broken0 = test->get(0);
  EXPECT_TRUE(broken0.input.equal(as_input(pattern(40, 4, 5))));
  EXPECT_EQ(broken0.target.scalar_type(), at::kLong);
  EXPECT_TRUE(broken0.target.equal(target_of(m.bottle_broken_0)));
  EXPECT_EQ(broken0.target.sum().item<std::int64_t>(), -2);
  const Sample broken1 = test->get(1);  // paired by name with 001_mask.png, not with the stray 000a_mask.png
  EXPECT_TRUE(broken1.input.equal(as_input(pattern(50, 4, 5))));
  EXPECT_TRUE(broken1.target.equal(target_of(m.bottle_broken_1)));
  EXPECT_EQ(broken1.target[1][2].item<std::int64_t>(), -1);
  const Sample good = test->get(2);
  EXPECT_TRUE(good.input.equal(as_input(pattern(30, 4, 5))));
  EXPECT_TRUE(good.target.equal(at::zeros({4, 5}, at::kLong)));
  const Sample bent = all->get(6);
  EXPECT_EQ(bent.input.sizes(), (std::vector<std::int64_t>{1, 3, 3}));  // kept greyscale
  EXPECT_TRUE(bent.input.equal(as_input(pattern(70, 3, 3, 1))));
  EXPECT_TRUE(bent.target.equal(target_of(m.grid_bent_0)));

  // Prepared: other splits and subsets come from the extracted tree.
  fs::remove(root / "mvtech-ad/mvtec_anomaly_detection.tar.xz");
  auto train = make_dataset("mvtec-ad", params(root, "train"));
  ASSERT_EQ(train->size(), 2 + 13 + 1);
  EXPECT_TRUE(train->labels().equal(at::zeros({16}, at::kLong)));
  EXPECT_TRUE(train->get(1).input.equal(as_input(pattern(20, 4, 5))));
  auto grid = make_dataset("mvtec-ad", params(root, "train", R"(, "subset": "grid")"));
  ASSERT_EQ(grid->size(), 1);
  EXPECT_TRUE(grid->get(0).input.equal(as_input(pattern(60, 3, 3, 1))));
  EXPECT_TRUE(grid->get(0).target.equal(at::zeros({3, 3}, at::kLong)));
  EXPECT_EQ(served.requests("mvtec_anomaly_detection.tar.xz"), 1);
}

TEST(MvtecAd, ADefectiveImageWithoutMaskIsNamed) {
  const fs::path root = temp_dir("mvtec_ad_no_mask");
  put_png(root / "mvtech-ad/screw/test/scratch_head/000.png", pattern(0, 2, 2, 1));
  put_png(root / "mvtech-ad/screw/test/scratch_head/001.png", pattern(0, 2, 2, 1));
  put_png(root / "mvtech-ad/screw/ground_truth/scratch_head/000_mask.png", mask(2, 2, {}));
  put_png(root / "mvtech-ad/screw/ground_truth/scratch_head/002_mask.png", mask(2, 2, {}));
  try {
    make_dataset("mvtec-ad", params(root, "test", R"(, "subset": "screw")"));
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("mvtec-ad: " + (root / "mvtech-ad/screw/test/scratch_head/001.png").string()), std::string::npos)
        << m;
    EXPECT_NE(m.find("001_mask.png"), std::string::npos) << m;
  }
}

TEST(MvtecAd, AMaskOfAnotherSizeIsNamedWhenRead) {
  const fs::path root = temp_dir("mvtec_ad_mask_size");
  put_png(root / "mvtech-ad/tile/test/crack/000.png", pattern(0, 4, 4));
  put_png(root / "mvtech-ad/tile/ground_truth/crack/000_mask.png", mask(4, 3, {}));
  auto tile = make_dataset("mvtec-ad", params(root, "test"));
  try {
    tile->get(0);
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("mvtec-ad: " + (root / "mvtech-ad/tile/ground_truth/crack/000_mask.png").string()),
              std::string::npos)
        << m;
  }
}

TEST(MvtecAd, MissingDataNamesTheArchiveWithoutChecksum) {
  const fs::path root = temp_dir("mvtec_ad_missing");
  for (const std::string more : {"", R"(, "subset": "zipper")"}) {
    try {
      make_dataset("mvtec-ad", params(root, "test", more));
      ADD_FAILURE() << "no error";
    } catch (const FileError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("mvtec-ad: data not found"), std::string::npos) << m;
      EXPECT_NE(m.find((root / "mvtech-ad/zipper").string()), std::string::npos) << m;
      EXPECT_NE(m.find("mvtec_anomaly_detection.tar.xz from https://www.mydrive.ch/"), std::string::npos) << m;
      EXPECT_NE(m.find("no published checksum"), std::string::npos) << m;
      EXPECT_NE(m.find("mvtec.com"), std::string::npos) << m;
    }
  }
}

TEST(MvtecAd, UnknownSplitOrCategoryIsRejected) {
  const fs::path root = temp_dir("mvtec_ad_params");
  EXPECT_THROW(make_dataset("mvtec-ad", params(root, "val")), InvalidArgument);
  EXPECT_THROW(make_dataset("mvtec-ad", params(root, "test", R"(, "subset": "bottles")")), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
