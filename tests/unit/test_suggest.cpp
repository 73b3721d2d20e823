#include <gtest/gtest.h>

#include "ood/core/suggest.hpp"

namespace ood::core {
namespace {

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("energy", "energy"), 0u);
  EXPECT_EQ(edit_distance("enrgy", "energy"), 1u);
  EXPECT_EQ(edit_distance("msp", "mps"), 1u);  // transposition
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("Energy", "energy"), 0u);
}

TEST(Suggest, NearestName) {
  const std::vector<std::string> names = {"max-softmax", "energy-based", "max-logit", "entropy"};
  EXPECT_EQ(nearest_name("energy-base", names), "energy-based");
  EXPECT_EQ(nearest_name("max-softmx", names), "max-softmax");
  EXPECT_EQ(nearest_name("maxlogit", names), "max-logit");
  EXPECT_FALSE(nearest_name("mahalanobis", names));
  EXPECT_FALSE(nearest_name("x", {"y"}));
  EXPECT_EQ(did_you_mean("entropi", names), " (did you mean 'entropy'?)");
  EXPECT_EQ(did_you_mean("zzzzzz", names), "");
}

}  // namespace
}  // namespace ood::core
