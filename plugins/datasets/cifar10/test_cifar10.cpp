// cifar10 on a miniature cifar-10-python.tar.gz (Python 2 pickles, as the real batches),
// served through $OOD_RESOURCES.
#include <fstream>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "python2_pickle.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

// n images; image i: red plane all (i + 1), green plane its pixel index mod 256, blue 255.
std::string pixels(int n, int offset) {
  std::string p;
  for (int i = 0; i < n; ++i) {
    p += std::string(1024, static_cast<char>(offset + i + 1));
    for (int j = 0; j < 1024; ++j) p += static_cast<char>(j % 256);
    p += std::string(1024, '\xff');
  }
  return p;
}

fs::path miniature(const fs::path& dir) {
  std::vector<ArchiveEntry> entries = {{"cifar-10-batches-py", "", ArchiveEntry::Type::Folder}};
  for (int b = 1; b <= 5; ++b)
    entries.push_back({"cifar-10-batches-py/data_batch_" + std::to_string(b),
                       cifar_batch("labels", {b, b + 1}, pixels(2, 10 * b))});
  entries.push_back({"cifar-10-batches-py/test_batch", cifar_batch("labels", {7, 8, 9}, pixels(3, 100))});
  entries.push_back({"cifar-10-batches-py/batches.meta",
                     name_list("label_names", {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                               "horse", "ship", "truck"})});
  entries.push_back({"cifar-10-batches-py/readme.html", "<html></html>"});
  write_archive(dir / "cifar-10-python.tar.gz", entries);
  return dir / "cifar-10-python.tar.gz";
}

TEST(Cifar10, DownloadsAndReadsThePythonBatches) {
  const fs::path dir = temp_dir("cifar10");
  ServedResources served(dir / "server");
  served.serve(miniature(dir / "src"));
  const fs::path root = dir / "root";
  auto train = make_dataset("cifar10", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(train->size(), 10);
  EXPECT_TRUE(train->labels().equal(at::tensor({1, 2, 2, 3, 3, 4, 4, 5, 5, 6}, at::kLong)));
  EXPECT_EQ(train->info().classes.at(9), "truck");
  const Sample s = train->get(3);  // batch 2, image 1
  ASSERT_EQ(s.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(s.label(), 3);
  EXPECT_FLOAT_EQ(s.input[0][5][7].item<float>(), 22.0f / 255);           // red: offset 20 + 1 + 1
  EXPECT_FLOAT_EQ(s.input[1][1][2].item<float>(), (34 % 256) / 255.0f);  // green: pixel 32 + 2
  EXPECT_FLOAT_EQ(s.input[2][31][31].item<float>(), 1.0f);
  auto test = make_dataset("cifar10", R"({"root": ")" + root.string() + R"(", "train": false})");
  EXPECT_EQ(test->size(), 3);
  EXPECT_EQ(test->get(2).label(), 9);
  EXPECT_EQ(served.requests("cifar-10-python.tar.gz"), 1);
}

TEST(Cifar10, CorruptBatchIsNamed) {
  const fs::path root = temp_dir("cifar10_corrupt");
  fs::create_directories(root / "cifar-10-batches-py");
  for (const char* f : {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                        "batches.meta"})
    std::ofstream(root / "cifar-10-batches-py" / f) << "x";
  std::ofstream(root / "cifar-10-batches-py/test_batch", std::ios::binary)
      << cifar_batch("labels", {1, 2}, pixels(1, 0));  // two labels, one image
  try {
    make_dataset("cifar10", R"({"root": ")" + root.string() + R"(", "train": false})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("test_batch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
