// sumnist on six miniature .npz files (key arr_0), served through $OOD_RESOURCES.
#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

TEST(Sumnist, LabelsAnomaliesByTheDigitSum) {
  const fs::path dir = temp_dir("sumnist");
  ServedResources served(dir / "server");
  for (const std::string split : {"train", "test"}) {
    std::vector<float> x(3 * 56 * 56);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i / (56 * 56)) * 100);
    write_archive(dir / "src" / ("x-" + split + ".npz"), {{"arr_0.npy", npy_bytes("<f4", {3, 56, 56}, float32_bytes(x))}});
    // sums 20, 19, 20
    write_archive(dir / "src" / ("y-" + split + ".npz"),
                  {{"arr_0.npy", npy_bytes("<i8", {3, 4}, int64_bytes({5, 5, 5, 5, 9, 9, 1, 0, 2, 3, 7, 8}))}});
    write_archive(dir / "src" / ("b-" + split + ".npz"),
                  {{"arr_0.npy", npy_bytes("<f4", {3, 4, 4}, float32_bytes(std::vector<float>(48, 1.0f)))}});
    for (const char* k : {"x-", "y-", "b-"}) served.serve(dir / "src" / (k + split + ".npz"));
  }
  auto ds = make_dataset("sumnist", R"({"root": ")" + (dir / "root").string() + R"(", "train": false, "download": true})");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_TRUE(ds->labels().equal(at::tensor({0, -1, 0}, at::kLong)));
  const Sample s = ds->get(1);
  ASSERT_EQ(s.input.sizes(), (std::vector<std::int64_t>{3, 56, 56}));
  EXPECT_FLOAT_EQ(s.input[2][10][10].item<float>(), 100.0f / 255);
  EXPECT_TRUE(fs::exists(dir / "root/sumnist/b-train.npz"));
}

}  // namespace
}  // namespace ood::test
