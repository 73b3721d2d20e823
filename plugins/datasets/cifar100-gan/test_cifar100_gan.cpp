// cifar100-gan on a miniature samples-2.0.npz (a zip with x.npy), served through
// $OOD_RESOURCES.
#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

TEST(Cifar100Gan, ReadsKeyXChannelFirst) {
  const fs::path dir = temp_dir("cifar100_gan");
  std::string pixels;
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 3; ++c) pixels += std::string(32 * 32, static_cast<char>(i * 3 + c));
  write_archive(dir / "src/samples-2.0.npz", {{"x.npy", npy_bytes("|u1", {3, 3, 32, 32}, pixels)}});
  ServedResources served(dir / "server");
  served.serve(dir / "src/samples-2.0.npz");
  auto ds = make_dataset("cifar100-gan",
                         R"({"root": ")" + (dir / "root").string() + R"(", "sigma": 2.0, "download": true})");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->get(0).label(), -1);
  EXPECT_FLOAT_EQ(ds->get(2).input[1][4][4].item<float>(), 7.0f / 255);
}

TEST(Cifar100Gan, OnlyThePublishedSigmas) {
  try {
    make_dataset("cifar100-gan", R"({"root": "/nonexistent", "sigma": 3.0})");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("50.0 or 2.0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
