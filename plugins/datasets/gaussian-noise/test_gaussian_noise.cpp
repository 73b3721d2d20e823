#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

TEST(GaussianNoise, SeededPerIndexWithOodLabels) {
  auto ds = make_dataset("gaussian-noise", R"({"size": 50, "shape": [1, 8, 6], "seed": 3})");
  ASSERT_EQ(ds->size(), 50);
  const Sample a = ds->get(7);
  EXPECT_EQ(a.input.sizes(), (std::vector<int64_t>{1, 8, 6}));
  EXPECT_EQ(a.label(), -1);
  // The same index gives the same image whatever was read before.
  ds->get(3);
  EXPECT_TRUE(ds->get(7).input.equal(a.input));
  EXPECT_FALSE(ds->get(8).input.equal(a.input));
  auto other_seed = make_dataset("gaussian-noise", R"({"size": 50, "shape": [1, 8, 6], "seed": 4})");
  EXPECT_FALSE(other_seed->get(7).input.equal(a.input));
  EXPECT_TRUE(ds->labels().equal(at::full({50}, -1, at::kLong)));
}

TEST(GaussianNoise, PixelsAreClippedBytesOver255) {
  auto ds = make_dataset("gaussian-noise", R"({"size": 4, "shape": [3, 32, 32], "seed": 1})");
  const at::Tensor x = ds->get(0).input;
  EXPECT_EQ(x.scalar_type(), at::kFloat);
  EXPECT_EQ(x.min().item<float>(), 0.0f);  // scale 128 around 128: clipping happens
  EXPECT_EQ(x.max().item<float>(), 1.0f);
  const at::Tensor bytes = x * 255;
  EXPECT_TRUE(all_close(bytes, bytes.round(), 0, 1e-4));
  EXPECT_NEAR(bytes.mean().item<float>(), 128.0, 6.0);
}

TEST(GaussianNoise, RefusesBadParameters) {
  EXPECT_THROW(make_dataset("gaussian-noise", R"({"size": 0})"), InvalidArgument);
  EXPECT_THROW(make_dataset("gaussian-noise", R"({"shape": [32, 32]})"), InvalidArgument);
  EXPECT_THROW(make_dataset("gaussian-noise", R"({"shape": [3, 0, 32]})"), InvalidArgument);
  EXPECT_THROW(make_dataset("gaussian-noise", R"({"scale": -1})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
