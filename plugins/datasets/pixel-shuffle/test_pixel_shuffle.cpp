// pixel-shuffle: a permutation of each image's pixels, the same for every channel,
// reproducible per index, labelled -1.
#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

std::string base_params(int size) {
  return R"({"dataset": {"plugin": "uniform-noise", "params": {"size": 16, "shape": [3, 5, 7]}}, "size": )" +
         std::to_string(size) + R"(, "seed": 3})";
}

TEST(PixelShuffle, PermutesPixelsAlikeInEveryChannel) {
  auto base = make_dataset("uniform-noise", R"({"size": 16, "shape": [3, 5, 7]})");
  auto ds = make_dataset("pixel-shuffle", base_params(0));
  ASSERT_EQ(ds->size(), 16);
  for (std::int64_t i : {0, 5, 15}) {
    const at::Tensor original = base->get(i).input.reshape({3, 35});
    const Sample s = ds->get(i);
    EXPECT_EQ(s.label(), -1);
    ASSERT_EQ(s.input.sizes(), (std::vector<int64_t>{3, 5, 7}));
    const at::Tensor shuffled = s.input.reshape({3, 35});
    EXPECT_FALSE(at::equal(shuffled, original));
    // Same multiset of values per channel, and one permutation for all channels
    // (uniform noise has no ties):
    // sorting channel 0 orders every channel's values alike.
    for (int c = 0; c < 3; ++c)
      EXPECT_TRUE(at::equal(std::get<0>(shuffled[c].sort()), std::get<0>(original[c].sort())));
    const at::Tensor order_original = std::get<1>(original[0].sort());
    const at::Tensor order_shuffled = std::get<1>(shuffled[0].sort());
    for (int c = 1; c < 3; ++c)
      EXPECT_TRUE(at::equal(shuffled[c].index_select(0, order_shuffled), original[c].index_select(0, order_original)));
    EXPECT_TRUE(at::equal(ds->get(i).input, s.input));  // reproducible
  }
  EXPECT_TRUE(at::equal(ds->labels(), at::full({16}, -1, at::kLong)));
}

TEST(PixelShuffle, SizeKeepsTheFirstSamplesAndIndicesAreChecked) {
  auto ds = make_dataset("pixel-shuffle", base_params(4));
  EXPECT_EQ(ds->size(), 4);
  EXPECT_THROW(ds->get(4), InvalidArgument);
  EXPECT_THROW(ds->get(-1), InvalidArgument);
  EXPECT_THROW(make_dataset("pixel-shuffle", R"({"size": 3})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
