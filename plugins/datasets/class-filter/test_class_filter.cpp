#include "test_support.hpp"

#include "ood/error.hpp"

namespace ood::test {
namespace {

const std::string kBase = R"({"plugin": "fashion-mnist", "params": {"split": "test"}})";

TEST(ClassFilter, KeepsChosenClassesInBaseOrder) {
  auto ds = make_dataset("class-filter", R"({"dataset": )" + kBase + R"(, "classes": [3, 1]})");
  ASSERT_EQ(ds->size(), 2000);
  const at::Tensor labels = ds->labels();
  EXPECT_TRUE(((labels == 1) | (labels == 3)).all().item<bool>());
  auto base = make_dataset("fashion-mnist", R"({"split": "test"})");
  const at::Tensor base_labels = base->labels();
  const at::Tensor first = (base_labels == 1).logical_or(base_labels == 3).nonzero()[0][0];
  EXPECT_TRUE(ds->get(0).input.equal(base->get(first.item<int64_t>()).input));
  EXPECT_EQ(ds->get(0).label(), ds->labels()[0].item<int64_t>());
}

TEST(ClassFilter, MarksOodAndRemaps) {
  auto ood = make_dataset("class-filter", R"({"dataset": )" + kBase + R"(, "classes": [6, 7, 8, 9], "mark_ood": true})");
  EXPECT_EQ(ood->size(), 4000);
  EXPECT_TRUE(ood->labels().equal(at::full({4000}, -1, at::kLong)));
  EXPECT_EQ(ood->get(17).label(), -1);
  auto remapped = make_dataset("class-filter", R"({"dataset": )" + kBase + R"(, "classes": [9, 4], "remap": true})");
  const at::Tensor l = remapped->labels();
  EXPECT_TRUE(((l == 0) | (l == 1)).all().item<bool>());
  EXPECT_EQ(remapped->info().classes, (std::vector<std::string>{"Ankle boot", "Coat"}));
}

TEST(ClassFilter, RefusesBadParameters) {
  EXPECT_THROW(make_dataset("class-filter", R"({"dataset": )" + kBase + R"(, "classes": []})"), InvalidArgument);
  EXPECT_THROW(make_dataset("class-filter", R"({"dataset": )" + kBase + R"(, "classes": [1, 1]})"), InvalidArgument);
  EXPECT_THROW(make_dataset("class-filter", R"({"dataset": )" + kBase +
                                                R"(, "classes": [1], "remap": true, "mark_ood": true})"),
               InvalidArgument);
  EXPECT_THROW(make_dataset("class-filter", R"({"classes": [1]})"), InvalidArgument);
  EXPECT_THROW(make_dataset("class-filter", R"({"dataset": {"plugin": "fashion-mnst"}, "classes": [1]})"),
               InvalidArgument);
}

}  // namespace
}  // namespace ood::test
