// cifar100 on a miniature cifar-100-python.tar.gz (Python 2 pickles), served through
// $OOD_RESOURCES.
#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "python2_pickle.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

std::string pixels(int n) {
  std::string p;
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) p += std::string(1024, static_cast<char>(50 * c + i));
  return p;
}

TEST(Cifar100, DownloadsAndReadsFineLabels) {
  const fs::path dir = temp_dir("cifar100");
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) names.push_back("class" + std::to_string(i));
  std::string train = cifar_batch("fine_labels", {99, 0, 42}, pixels(3));
  write_archive(dir / "src/cifar-100-python.tar.gz",
                {{"cifar-100-python/train", train},
                 {"cifar-100-python/test", cifar_batch("fine_labels", {5}, pixels(1))},
                 {"cifar-100-python/meta", name_list("fine_label_names", names)}});
  ServedResources served(dir / "server");
  served.serve(dir / "src/cifar-100-python.tar.gz");
  auto ds = make_dataset("cifar100", R"({"root": ")" + (dir / "root").string() + R"(", "download": true})");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_TRUE(ds->labels().equal(at::tensor({99, 0, 42}, at::kLong)));
  EXPECT_EQ(ds->info().classes.at(42), "class42");
  const Sample s = ds->get(2);
  EXPECT_FLOAT_EQ(s.input[0][0][0].item<float>(), 2.0f / 255);
  EXPECT_FLOAT_EQ(s.input[2][9][9].item<float>(), 102.0f / 255);
  auto test = make_dataset("cifar100", R"({"root": ")" + (dir / "root").string() + R"(", "train": false})");
  EXPECT_EQ(test->size(), 1);
}

}  // namespace
}  // namespace ood::test
