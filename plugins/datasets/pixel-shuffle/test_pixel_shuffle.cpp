// pixel-shuffle: a permutation of each image's pixels, the same for every channel,
// reproducible per index, labelled -1.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

// Images whose every value is distinct, so the permutation can be read back.
std::string distinct_images(int size) {
  const auto dir = temp_dir("pixel_shuffle");
  TensorDict d;
  d.set("x", at::arange(16 * 3 * 5 * 7, at::kFloat).reshape({16, 3, 5, 7}));
  d.set("y", at::arange(16, at::kLong).remainder(4));
  io::save_tensor_dict(dir / "images.pt", d);
  return R"({"dataset": {"plugin": "tensor-file", "params": {"path": ")" + (dir / "images.pt").string() +
         R"(", "inputs": "x", "labels": "y"}}, "size": )" + std::to_string(size) + R"(, "seed": 3})";
}

TEST(PixelShuffle, PermutesPixelsAlikeInEveryChannel) {
  auto ds = make_dataset("pixel-shuffle", distinct_images(0));
  ASSERT_EQ(ds->size(), 16);
  std::vector<at::Tensor> perms;
  for (std::int64_t i : {0, 5, 15}) {
    const at::Tensor original = at::arange(3 * 35, at::kFloat).reshape({3, 35}) + static_cast<float>(i * 105);
    const Sample s = ds->get(i);
    EXPECT_EQ(s.label(), -1);
    ASSERT_EQ(s.input.sizes(), (std::vector<int64_t>{3, 5, 7}));
    const at::Tensor shuffled = s.input.reshape({3, 35});
    // Channel 0 holds 0..34 (+ offset): its values are the permutation itself.
    const at::Tensor perm = (shuffled[0] - original[0][0]).to(at::kLong);
    EXPECT_TRUE(at::equal(std::get<0>(perm.sort()), at::arange(35, at::kLong))) << "not a permutation";
    EXPECT_FALSE(at::equal(perm, at::arange(35, at::kLong))) << "nothing moved";
    for (int c = 0; c < 3; ++c) EXPECT_TRUE(at::equal(shuffled[c], original[c].index_select(0, perm))) << c;
    EXPECT_TRUE(at::equal(ds->get(i).input, s.input));  // reproducible
    perms.push_back(perm);
  }
  EXPECT_FALSE(at::equal(perms[0], perms[1]));  // one permutation per sample
  EXPECT_TRUE(at::equal(ds->labels(), at::full({16}, -1, at::kLong)));
}

TEST(PixelShuffle, SizeKeepsTheFirstSamplesAndIndicesAreChecked) {
  auto ds = make_dataset("pixel-shuffle", distinct_images(4));
  EXPECT_EQ(ds->size(), 4);
  EXPECT_THROW(ds->get(4), InvalidArgument);
  EXPECT_THROW(ds->get(-1), InvalidArgument);
  EXPECT_THROW(make_dataset("pixel-shuffle", R"({"size": 3})"), InvalidArgument);  // dataset is required
}

}  // namespace
}  // namespace ood::test
