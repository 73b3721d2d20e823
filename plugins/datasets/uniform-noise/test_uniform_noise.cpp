#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

TEST(UniformNoise, SeededPerIndexWithOodLabels) {
  auto ds = make_dataset("uniform-noise", R"({"size": 20, "shape": [3, 4, 4], "seed": 9})");
  const Sample a = ds->get(5);
  EXPECT_EQ(a.label(), -1);
  EXPECT_EQ(a.input.sizes(), (std::vector<int64_t>{3, 4, 4}));
  ds->get(0);
  EXPECT_TRUE(ds->get(5).input.equal(a.input));
  EXPECT_FALSE(ds->get(6).input.equal(a.input));
}

TEST(UniformNoise, PixelsAreBytes0To254Over255) {
  auto ds = make_dataset("uniform-noise", R"({"size": 2, "shape": [3, 64, 64], "seed": 2})");
  const at::Tensor bytes = ds->get(0).input * 255;
  EXPECT_TRUE(all_close(bytes, bytes.round(), 0, 1e-4));
  EXPECT_GE(bytes.min().item<float>(), 0.0f);
  EXPECT_LE(bytes.max().item<float>(), 254.0f + 1e-3f);  // as pytorch-ood: 255 never occurs
  EXPECT_NEAR(bytes.mean().item<float>(), 127.0, 4.0);
}

TEST(UniformNoise, DefaultSeedFollowsThePipelineSeed) {
  auto u = make_dataset("uniform-noise", R"({"size": 2, "shape": [1, 4, 4]})");
  auto u2 = make_dataset("uniform-noise", R"({"size": 2, "shape": [1, 4, 4]})");
  EXPECT_TRUE(u->get(0).input.equal(u2->get(0).input));
  auto seeded = make_dataset("uniform-noise", R"({"size": 2, "shape": [1, 4, 4], "seed": 5})");
  EXPECT_FALSE(u->get(0).input.equal(seeded->get(0).input));
  EXPECT_THROW(u->get(2), InvalidArgument);
  EXPECT_THROW(u->get(-1), InvalidArgument);
}

TEST(UniformNoise, RefusesBadParameters) {
  EXPECT_THROW(make_dataset("uniform-noise", R"({"size": -3})"), InvalidArgument);
  EXPECT_THROW(make_dataset("uniform-noise", R"({"loc": 3})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
