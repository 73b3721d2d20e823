// The transforms: normalize, to-rgb, resize, center-crop, random-crop, random-horizontal-flip,
// and the transform presets of weight sets against torchvision.
#include "test_support.hpp"

#include "ood/core/transform_presets.hpp"
#include "ood/error.hpp"
#include "ood/random.hpp"

namespace ood::test {
namespace {

Sample image(at::Tensor x) { return {std::move(x), at::scalar_tensor(3, at::kLong)}; }

TEST(Normalize, PerChannelAndBroadcast) {
  auto norm = make_augmentation("normalize", R"({"mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 2.0]})");
  at::Generator gen = make_generator(0);
  const at::Tensor x = at::rand({3, 4, 5});
  const Sample out = norm->apply(image(x), gen);
  EXPECT_TRUE(all_close(out.input[0], (x[0] - 0.5) / 0.5, 1e-6, 1e-6));
  EXPECT_TRUE(all_close(out.input[2], x[2] / 2.0, 1e-6, 1e-6));
  EXPECT_EQ(out.label(), 3);
  auto grey = make_augmentation("normalize", R"({"mean": [0.2860], "std": [0.3530]})");
  EXPECT_TRUE(all_close(grey->apply(image(x), gen).input, (x - 0.286) / 0.353, 1e-5, 1e-6));
  EXPECT_THROW(norm->apply(image(at::rand({2, 4, 4})), gen), ShapeError);
  EXPECT_THROW(make_augmentation("normalize", R"({"mean": [0.5], "std": [0.5, 0.5]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("normalize", R"({"mean": [0.5], "std": [0.0]})"), InvalidArgument);
}

TEST(ToRgb, RepeatsGreyKeepsRgb) {
  auto t = make_augmentation("to-rgb");
  at::Generator gen = make_generator(0);
  const at::Tensor grey = at::rand({1, 3, 3});
  const at::Tensor rgb = t->apply(image(grey), gen).input;
  ASSERT_EQ(rgb.size(0), 3);
  EXPECT_TRUE(rgb[2].equal(grey[0]));
  const at::Tensor colour = at::rand({3, 2, 2});
  EXPECT_TRUE(t->apply(image(colour), gen).input.equal(colour));
  EXPECT_THROW(t->apply(image(at::rand({2, 2, 2})), gen), ShapeError);
}

TEST(Resize, BilinearToGivenSize) {
  at::Generator gen = make_generator(0);
  auto up = make_augmentation("resize", R"({"size": [32, 32]})");
  const at::Tensor x = at::rand({1, 28, 28});
  const at::Tensor y = up->apply(image(x), gen).input;
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 32, 32}));
  EXPECT_TRUE(all_close(y, at::upsample_bilinear2d(x.unsqueeze(0), {32, 32}, false).squeeze(0), 1e-6, 1e-6));
  // A constant image stays constant, also when downscaling with antialiasing.
  auto down = make_augmentation("resize", R"({"size": [7]})");
  EXPECT_TRUE(all_close(down->apply(image(at::full({3, 28, 28}, 0.25)), gen).input, at::full({3, 7, 7}, 0.25), 1e-6,
                        1e-6));
  EXPECT_THROW(up->apply(image(at::rand({28, 28})), gen), ShapeError);
  EXPECT_THROW(make_augmentation("resize", R"({"size": [0, 3]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("resize", R"({"size": [1, 2, 3]})"), InvalidArgument);
}

TEST(RandomCrop, SeededCropOfPaddedImage) {
  auto crop = make_augmentation("random-crop", R"({"size": [4, 4], "padding": 2})");
  const at::Tensor x = at::arange(16, at::kFloat).view({1, 4, 4}) + 1;
  at::Generator g1 = make_generator(42), g2 = make_generator(42);
  const at::Tensor a = crop->apply(image(x), g1).input;
  EXPECT_TRUE(a.equal(crop->apply(image(x), g2).input));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 4, 4}));
  // Every crop is a window of the zero-padded image: its non-zero values are x's, in order.
  bool some_padding = false;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    at::Generator g = make_generator(seed);
    const at::Tensor c = crop->apply(image(x), g).input;
    const at::Tensor padded = at::constant_pad_nd(x, {2, 2, 2, 2}, 0);
    bool found = false;
    for (int64_t t = 0; t <= 4 && !found; ++t)
      for (int64_t l = 0; l <= 4 && !found; ++l) found = padded.slice(1, t, t + 4).slice(2, l, l + 4).equal(c);
    EXPECT_TRUE(found);
    some_padding = some_padding || (c == 0).any().item<bool>();
  }
  EXPECT_TRUE(some_padding);
  at::Generator g = make_generator(0);
  EXPECT_THROW(make_augmentation("random-crop", R"({"size": [9, 9]})")->apply(image(x), g), ShapeError);
}

TEST(RandomHorizontalFlip, FlipsWithProbabilityP) {
  const at::Tensor x = at::arange(6, at::kFloat).view({1, 2, 3});
  auto always = make_augmentation("random-horizontal-flip", R"({"p": 1.0})");
  auto never = make_augmentation("random-horizontal-flip", R"({"p": 0.0})");
  at::Generator gen = make_generator(1);
  EXPECT_TRUE(always->apply(image(x), gen).input.equal(x.flip({-1})));
  EXPECT_TRUE(never->apply(image(x), gen).input.equal(x));
  auto half = make_augmentation("random-horizontal-flip");
  int flipped = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    at::Generator g = make_generator(seed);
    flipped += half->apply(image(x), g).input.equal(x) ? 0 : 1;
  }
  EXPECT_GT(flipped, 150);
  EXPECT_LT(flipped, 250);
  EXPECT_THROW(make_augmentation("random-horizontal-flip", R"({"p": 1.5})"), InvalidArgument);
}

TEST(Resize, ShorterSideKeepsTheAspectRatioAsTorchvision) {
  at::Generator gen = make_generator(0);
  auto r = make_augmentation("resize", R"({"shorter_side": 10})");
  // torchvision: the longer side is int(10 * long / short), truncated
  EXPECT_EQ(r->apply(image(at::rand({3, 30, 17})), gen).input.sizes(), (std::vector<int64_t>{3, 17, 10}));
  EXPECT_EQ(r->apply(image(at::rand({1, 7, 9})), gen).input.sizes(), (std::vector<int64_t>{1, 10, 12}));
  EXPECT_EQ(r->apply(image(at::rand({1, 5, 5})), gen).input.sizes(), (std::vector<int64_t>{1, 10, 10}));
  const at::Tensor same = at::rand({1, 10, 13});
  EXPECT_TRUE(r->apply(image(same), gen).input.equal(same));
  EXPECT_THROW(make_augmentation("resize", R"({"size": [4], "shorter_side": 4})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("resize", R"({})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("resize", R"({"shorter_side": 0})"), InvalidArgument);
}

TEST(CenterCrop, OffsetsAndPaddingAsTorchvision) {
  at::Generator gen = make_generator(0);
  const auto data = load_tensor_dict_file("presets/presets.pt");
  auto crop = make_augmentation("center-crop", R"({"size": [8, 4]})");
  EXPECT_TRUE(crop->apply(image(tensor_of(data, "crop_x")), gen).input.equal(tensor_of(data, "crop_y")));
  // Python's round: an offset of 0.5 goes to 0, 1.5 to 2, 2.5 to 2
  const at::Tensor row = at::arange(8, at::kFloat).view({1, 1, 8});
  for (const auto& [width, first] : std::vector<std::pair<int, float>>{{7, 0}, {5, 2}, {3, 2}}) {
    auto c = make_augmentation("center-crop", "{\"size\": [1, " + std::to_string(width) + "]}");
    EXPECT_EQ(c->apply(image(row), gen).input[0][0][0].item<float>(), first) << "width " << width;
  }
  auto square = make_augmentation("center-crop", R"({"size": [3]})");
  EXPECT_EQ(square->apply(image(at::rand({2, 6, 6})), gen).input.sizes(), (std::vector<int64_t>{2, 3, 3}));
  EXPECT_THROW(square->apply(image(at::rand({6, 6})), gen), ShapeError);
  EXPECT_THROW(make_augmentation("center-crop", R"({"size": [0]})"), InvalidArgument);
  EXPECT_THROW(make_augmentation("center-crop", R"({"size": [1, 2, 3]})"), InvalidArgument);
}

// The components a preset stands for, built and applied in order as the loader does.
at::Tensor apply_preset(const std::string& name, const at::Tensor& x) {
  at::Generator gen = make_generator(0);
  Sample s = image(x);
  for (const auto& c : core::preset_transforms(name))
    s = make_augmentation(c["plugin"], c.contains("params") ? c["params"].dump() : "{}")->apply(std::move(s), gen);
  return s.input;
}

TEST(TransformPresets, MatchTorchvisionAndPytorchOod) {
  const auto data = load_tensor_dict_file("presets/presets.pt");
  // resnet50 IMAGENET1K_V2: resize 232, crop 224 (downscaling with antialiasing)
  EXPECT_TRUE(all_close(apply_preset("resnet50-imagenet1k-v2", tensor_of(data, "imagenet_x")),
                        tensor_of(data, "imagenet_y"), 1e-4, 1e-4));
  // resnet18 IMAGENET1K_V1: resize 256 (upscaling), crop 224
  EXPECT_TRUE(all_close(apply_preset("resnet18-imagenet1k-v1", tensor_of(data, "small_x")), tensor_of(data, "small_y"),
                        1e-4, 1e-4));
  // pytorch-ood's transform_for("cifar10-pt") on a grey image
  EXPECT_TRUE(all_close(apply_preset("cifar10-pt", tensor_of(data, "cifar_x")), tensor_of(data, "cifar_y"), 1e-4,
                        1e-4));
  EXPECT_THROW(core::preset_transforms("no-such-weights"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
