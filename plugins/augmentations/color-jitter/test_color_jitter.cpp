// ColorJitter against torchvision 0.14 (tests/fixtures/augmentations/color_jitter.pt,
// written by generate_color_jitter.py): each adjust_* function on fixed factors, the
// parameter draws and the whole transform for seeded generators, the ranges, errors.
#include "test_support.hpp"

#include <cmath>

#include "color_jitter_ops.hpp"
#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood::test {
namespace {

using namespace ood_color_jitter;

constexpr double kTolerance = 1e-5;

Sample image(at::Tensor x) { return {std::move(x), at::scalar_tensor(2, at::kLong)}; }

const auto& fixture() {
  static const auto d = load_tensor_dict_file("augmentations/color_jitter.pt");
  return d;
}
at::Tensor fx(const std::string& key) { return tensor_of(fixture(), key); }

/// The largest |a - b|, for the report.
double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(ColorJitter, AdjustFunctionsMatchTorchvision) {
  const at::Tensor rgb = fx("rgb"), grey = fx("grey");
  EXPECT_TRUE(all_close(rgb_to_grayscale(rgb), fx("grayscale_rgb"), 0, kTolerance));
  using Adjust = at::Tensor (*)(const at::Tensor&, double);
  const std::vector<std::pair<std::string, Adjust>> ops = {{"brightness", adjust_brightness},
                                                           {"contrast", adjust_contrast},
                                                           {"saturation", adjust_saturation},
                                                           {"hue", adjust_hue}};
  double worst = 0;
  for (const auto& [name, adjust] : ops) {
    const at::Tensor factors = fx(name + "_factors");
    for (std::int64_t i = 0; i < factors.size(0); ++i) {
      const double f = factors[i].item<double>();
      const at::Tensor expected_rgb = fx(name + "_rgb")[i], expected_grey = fx(name + "_grey")[i];
      const at::Tensor actual_rgb = adjust(rgb, f), actual_grey = adjust(grey, f);
      EXPECT_TRUE(all_close(actual_rgb, expected_rgb, 0, kTolerance)) << name << " " << f;
      EXPECT_TRUE(all_close(actual_grey, expected_grey, 0, kTolerance)) << name << " " << f << " (grey)";
      worst = std::max({worst, max_diff(actual_rgb, expected_rgb), max_diff(actual_grey, expected_grey)});
    }
  }
  RecordProperty("max_abs_diff", std::to_string(worst));
  std::cout << "[ color-jitter ] adjust_* max |diff| vs torchvision: " << worst << "\n";
  // Grey images: saturation and hue change nothing.
  EXPECT_TRUE(adjust_saturation(grey, 0.2).equal(grey));
  EXPECT_TRUE(adjust_hue(grey, 0.3).equal(grey));
  EXPECT_THROW(adjust_hue(rgb, 0.6), InvalidArgument);
}

// The fixture's configurations, as this plugin's parameters.
const std::vector<std::string> kConfigs = {
    R"({"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1})",
    R"({"brightness_range": [0.5, 0.9], "hue_range": [-0.3, 0.2]})",
    R"({"contrast": 0.8})",
    R"({"saturation_range": [1.0, 1.0], "hue": 0.5})",
    R"({"brightness": 1.5, "saturation": 2.0})",
};

TEST(ColorJitter, SeededGeneratorGivesTorchvisionsDrawsAndOutput) {
  double worst = 0;
  for (std::size_t c = 0; c < kConfigs.size(); ++c) {
    auto jitter = make_augmentation("color-jitter", kConfigs[c]);
    const std::string key = "jitter" + std::to_string(c) + "_";
    const at::Tensor orders = fx(key + "order"), factors = fx(key + "factors");
    for (std::int64_t seed = 0; seed < orders.size(0); ++seed) {
      for (const std::string channels : {"rgb", "grey"}) {
        at::Generator gen = make_generator(static_cast<std::uint64_t>(seed));
        const at::Tensor out = jitter->apply(image(fx(channels)), gen).input;
        const at::Tensor expected = fx(key + channels)[seed];
        EXPECT_TRUE(all_close(out, expected, 0, kTolerance)) << kConfigs[c] << " seed " << seed << " " << channels;
        worst = std::max(worst, max_diff(out, expected));
      }
    }
  }
  std::cout << "[ color-jitter ] ColorJitter max |diff| vs torchvision: " << worst << "\n";
}

TEST(ColorJitter, DrawsMatchGetParams) {
  // The ranges the plugin derives for config 0, and torchvision's draws for each seed.
  JitterRanges ranges;
  ranges.brightness = std::pair{0.6, 1.4};
  ranges.contrast = std::pair{0.6, 1.4};
  ranges.saturation = std::pair{0.6, 1.4};
  ranges.hue = std::pair{-0.1, 0.1};
  const at::Tensor orders = fx("jitter0_order"), factors = fx("jitter0_factors");
  for (std::int64_t seed = 0; seed < orders.size(0); ++seed) {
    at::Generator gen = make_generator(static_cast<std::uint64_t>(seed));
    const JitterDraw draw = draw_jitter(ranges, gen);
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(draw.order[static_cast<std::size_t>(i)], orders[seed][i].item<std::int64_t>());
    EXPECT_EQ(*draw.brightness, factors[seed][0].item<double>());
    EXPECT_EQ(*draw.contrast, factors[seed][1].item<double>());
    EXPECT_EQ(*draw.saturation, factors[seed][2].item<double>());
    EXPECT_EQ(*draw.hue, factors[seed][3].item<double>());
  }
  // Config 3: saturation [1, 1] is off (no draw), as torchvision.
  EXPECT_TRUE(std::isnan(fx("jitter3_factors")[0][2].item<double>()));
}

TEST(ColorJitter, FactorsStayInTheirRanges) {
  JitterRanges ranges;
  ranges.brightness = std::pair{0.0, 1.5};
  ranges.hue = std::pair{-0.25, 0.1};
  double b_min = 1e9, b_max = -1e9, h_min = 1e9, h_max = -1e9;
  std::array<int, 4> first{};
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    at::Generator gen = make_generator(seed);
    const JitterDraw d = draw_jitter(ranges, gen);
    ASSERT_TRUE(d.brightness && d.hue && !d.contrast && !d.saturation);
    b_min = std::min(b_min, *d.brightness), b_max = std::max(b_max, *d.brightness);
    h_min = std::min(h_min, *d.hue), h_max = std::max(h_max, *d.hue);
    ++first[static_cast<std::size_t>(d.order[0])];
  }
  EXPECT_GE(b_min, 0.0);
  EXPECT_LT(b_min, 0.01);
  EXPECT_LE(b_max, 1.5);
  EXPECT_GT(b_max, 1.49);
  EXPECT_GE(h_min, -0.25);
  EXPECT_LT(h_min, -0.249);
  EXPECT_LE(h_max, 0.1);
  EXPECT_GT(h_max, 0.099);
  for (int count : first) EXPECT_NEAR(count, 500, 90);  // every adjustment comes first 1/4 of the time
}

TEST(ColorJitter, SpreadsClipAtZeroAndDefaultsDoNothing) {
  // brightness 1.5 means [max(0, -0.5), 2.5] = [0, 2.5]: factors near 0 occur, none below.
  auto wide = make_augmentation("color-jitter", R"({"brightness": 1.5})");
  const at::Tensor x = at::rand({3, 5, 5}) * 0.5 + 0.25;
  double lowest = 1e9;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    at::Generator gen = make_generator(seed);
    const at::Tensor out = wide->apply(image(x), gen).input;
    EXPECT_GE(out.min().item<float>(), 0.0f);
    EXPECT_LE(out.max().item<float>(), 1.0f);
    lowest = std::min(lowest, (out / x).min().item<double>());
  }
  EXPECT_LT(lowest, 0.05);
  // All off: the image comes back as it was, label untouched.
  auto off = make_augmentation("color-jitter");
  at::Generator gen = make_generator(1);
  const Sample s = off->apply(image(x), gen);
  EXPECT_TRUE(s.input.equal(x));
  EXPECT_EQ(s.label(), 2);
}

TEST(ColorJitter, Errors) {
  auto jitter = make_augmentation("color-jitter", R"({"brightness": 0.2})");
  at::Generator gen = make_generator(0);
  EXPECT_THROW(jitter->apply(image(at::rand({2, 4, 4})), gen), ShapeError);
  EXPECT_THROW(jitter->apply(image(at::rand({1, 3, 4, 4})), gen), ShapeError);
  EXPECT_THROW(jitter->apply(image(at::randint(0, 255, {3, 4, 4}, at::kByte)), gen), ShapeError);
  try {
    jitter->apply(image(at::rand({4, 4})), gen);
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("color-jitter"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("Float [4, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_augmentation("color-jitter", R"({"brightness": -0.1})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"hue": 0.6})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"hue_range": [-0.6, 0.1]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"hue_range": [0.2, 0.1]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"contrast_range": [1.2, 0.8]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"contrast_range": [0.8]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("color-jitter", R"({"saturation": 0.5, "saturation_range": [0.5, 1.5]})"),
               InvalidArgument);
}

}  // namespace
}  // namespace ood::test
