// RandomResizedCrop against torchvision 0.14 (tests/fixtures/augmentations/
// random_resized_crop.pt, written by generate_random_resized_crop.py): the boxes and
// outputs for seeded generators, the centre fallback, shapes, determinism, parameters.
#include "test_support.hpp"

#include "crop_box.hpp"
#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood::test {
namespace {

using ood_random_resized_crop::CropBox;
using ood_random_resized_crop::sample_crop_box;

Sample image(at::Tensor x) { return {std::move(x), at::scalar_tensor(4, at::kLong)}; }

const auto& fixture() {
  static const auto d = load_tensor_dict_file("augmentations/random_resized_crop.pt");
  return d;
}
at::Tensor fx(const std::string& key) { return tensor_of(fixture(), key); }

struct Case {
  std::string name, params;
  std::pair<double, double> scale, ratio;
  bool fallback;  // every seed ends in the centre fallback
};

// The fixture's cases, as this plugin's parameters.
const std::vector<Case> kCases = {
    {"default", R"({"size": [10, 8]})", {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0}, false},
    {"square_no_antialias", R"({"size": [12], "antialias": false})", {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0}, false},
    {"upscale", R"({"size": [20, 21], "scale": [0.3, 0.6], "ratio": [0.5, 2.0]})", {0.3, 0.6}, {0.5, 2.0}, false},
    {"same_size", R"({"size": [24, 18], "scale": [1.0, 1.0], "ratio": [0.75, 0.75]})", {1.0, 1.0}, {0.75, 0.75},
     false},
    {"fallback_wide_ratio", R"({"size": [6, 6], "ratio": [10.0, 20.0]})", {0.08, 1.0}, {10.0, 20.0}, true},
    {"fallback_tall_ratio", R"({"size": [6], "ratio": [0.02, 0.05]})", {0.08, 1.0}, {0.02, 0.05}, true},
    {"fallback_whole", R"({"size": [8, 8], "scale": [1.5, 2.0]})", {1.5, 2.0}, {3.0 / 4.0, 4.0 / 3.0}, true},
};

TEST(RandomResizedCrop, BoxesAndOutputsMatchTorchvisionForSeededGenerators) {
  const at::Tensor x = fx("image");
  double worst = 0;
  for (const Case& c : kCases) {
    auto crop = make_augmentation("random-resized-crop", c.params);
    const at::Tensor boxes = fx(c.name + "_boxes"), outputs = fx(c.name + "_output");
    for (std::int64_t seed = 0; seed < boxes.size(0); ++seed) {
      at::Generator box_gen = make_generator(static_cast<std::uint64_t>(seed));
      const CropBox box = sample_crop_box(x.size(1), x.size(2), c.scale, c.ratio, box_gen);
      EXPECT_EQ(box.top, boxes[seed][0].item<std::int64_t>()) << c.name << " seed " << seed;
      EXPECT_EQ(box.left, boxes[seed][1].item<std::int64_t>()) << c.name << " seed " << seed;
      EXPECT_EQ(box.height, boxes[seed][2].item<std::int64_t>()) << c.name << " seed " << seed;
      EXPECT_EQ(box.width, boxes[seed][3].item<std::int64_t>()) << c.name << " seed " << seed;
      EXPECT_EQ(box.fallback, c.fallback) << c.name << " seed " << seed;
      at::Generator gen = make_generator(static_cast<std::uint64_t>(seed));
      const Sample out = crop->apply(image(x), gen);
      EXPECT_EQ(out.label(), 4);
      EXPECT_TRUE(all_close(out.input, outputs[seed], 0, 1e-5)) << c.name << " seed " << seed;
      worst = std::max(worst, (out.input - outputs[seed]).abs().max().item<double>());
    }
  }
  std::cout << "[ random-resized-crop ] max |diff| vs torchvision: " << worst << "\n";
}

TEST(RandomResizedCrop, CentreFallbackClampsTheAspectRatio) {
  at::Generator gen = make_generator(0);
  // Nothing fits a 24 x 18 image with w / h >= 10: the full width, h = round(18 / 10) = 2.
  const CropBox wide = sample_crop_box(24, 18, {0.08, 1.0}, {10.0, 20.0}, gen);
  EXPECT_TRUE(wide.fallback);
  EXPECT_EQ(wide.width, 18);
  EXPECT_EQ(wide.height, 2);
  EXPECT_EQ(wide.top, 11);
  EXPECT_EQ(wide.left, 0);
  // Areas above the image's: the whole image when its own ratio is inside the range.
  const CropBox whole = sample_crop_box(24, 18, {1.5, 2.0}, {0.5, 2.0}, gen);
  EXPECT_TRUE(whole.fallback);
  EXPECT_EQ(whole.height, 24);
  EXPECT_EQ(whole.width, 18);
  // The full height, w = round(30 * 0.5) = 15, centred: (40 - 15) // 2 = 12.
  const CropBox tall = sample_crop_box(30, 40, {1.5, 2.0}, {0.25, 0.5}, gen);
  EXPECT_EQ(tall.height, 30);
  EXPECT_EQ(tall.width, 15);
  EXPECT_EQ(tall.left, 12);
  // A box never degenerates: width 1 with ratio >= 5 would be h = round(0.2) = 0.
  const CropBox thin = sample_crop_box(4, 1, {0.08, 1.0}, {5.0, 6.0}, gen);
  EXPECT_EQ(thin.height, 1);
  EXPECT_EQ(thin.width, 1);
}

TEST(RandomResizedCrop, ShapesDeterminismAndBoxesInside) {
  auto crop = make_augmentation("random-resized-crop", R"({"size": [7, 9]})");
  const at::Tensor x = at::rand({2, 31, 23});
  at::Generator g1 = make_generator(9), g2 = make_generator(9);
  const at::Tensor a = crop->apply(image(x), g1).input;
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 7, 9}));
  EXPECT_TRUE(a.equal(crop->apply(image(x), g2).input));
  int different = 0, fallbacks = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    at::Generator g = make_generator(seed);
    different += crop->apply(image(x), g).input.equal(a) ? 0 : 1;
    at::Generator box_gen = make_generator(seed);
    const CropBox box = sample_crop_box(31, 23, {0.08, 1.0}, {0.75, 4.0 / 3.0}, box_gen);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, 31);
    ASSERT_LE(box.left + box.width, 23);
    const double area = static_cast<double>(box.height * box.width) / (31.0 * 23.0);
    const double ratio = static_cast<double>(box.width) / static_cast<double>(box.height);
    if (box.fallback) {
      ++fallbacks;
      continue;
    }
    // Rounding the sides moves area and ratio a little outside their ranges.
    EXPECT_GT(area, 0.05);
    EXPECT_GT(ratio, 0.6);
    EXPECT_LT(ratio, 1.6);
  }
  EXPECT_GE(different, 198);
  EXPECT_LT(fallbacks, 5);
  // Grey images, double images.
  at::Generator g = make_generator(0);
  EXPECT_EQ(crop->apply(image(at::rand({1, 5, 5})), g).input.sizes(), (std::vector<int64_t>{1, 7, 9}));
  EXPECT_EQ(crop->apply(image(at::rand({3, 40, 40}, at::kDouble)), g).input.scalar_type(), at::kDouble);
}

TEST(RandomResizedCrop, InputAndParameterErrors) {
  auto crop = make_augmentation("random-resized-crop", R"({"size": [8]})");
  at::Generator gen = make_generator(0);
  try {
    crop->apply(image(at::rand({1, 3, 8, 8})), gen);
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("random-resized-crop"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("Float [1, 3, 8, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(crop->apply(image(at::rand({8, 8})), gen), ShapeError);
  EXPECT_THROW(crop->apply(image(at::zeros({3, 0, 8})), gen), ShapeError);
  EXPECT_THROW(crop->apply(image(at::randint(0, 255, {3, 8, 8}, at::kByte)), gen), ShapeError);
  EXPECT_THROW(make_augmentation("random-resized-crop", "{}"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [0]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [1, 2, 3]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [8], "scale": [0.5, 0.1]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [8], "scale": [0.0, 1.0]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [8], "scale": [0.5]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [8], "ratio": [2.0, 1.0]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("random-resized-crop", R"({"size": [8], "ratio": [-1.0, 1.0]})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
