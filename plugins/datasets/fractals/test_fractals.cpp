// fractals on a miniature of PixMix's fractals_and_fvis.tar (fractals_and_fvis/
// {fractals,first_layers_resized256_onevis}/images/), served through $OOD_RESOURCES,
// which gives the Google-Drive-only resource a URL, and placed by hand, as users must.
#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::pattern;
using folder_set::put_png;
using folder_set::as_input;

fs::path write_tar(const fs::path& dir) {
  const fs::path top = dir / "tree/fractals_and_fvis";
  put_png(top / "fractals/images/fractal_10.png", pattern(2, 6, 6));
  put_png(top / "fractals/images/fractal_1.png", pattern(1, 4, 5));
  put_png(top / "first_layers_resized256_onevis/images/fvis_1.png", pattern(9, 3, 3));
  write_archive(dir / "fractals_and_fvis.tar", tree_entries(dir / "tree", "fractals_and_fvis"));
  return dir / "fractals_and_fvis.tar";
}

TEST(Fractals, ExtractsTheSharedArchiveAndReadsTheFractals) {
  const fs::path dir = temp_dir("fractals");
  ServedResources served(dir / "server");
  served.serve(write_tar(dir));
  const fs::path root = dir / "root";
  auto fractals = make_dataset("fractals", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(fractals->size(), 2);
  EXPECT_TRUE(fractals->labels().equal(at::full({2}, -1, at::kLong)));
  const Sample first = fractals->get(0);
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_TRUE(first.input.equal(as_input(pattern(1, 4, 5))));
  EXPECT_EQ(first.label(), -1);
  EXPECT_TRUE(fractals->get(1).input.equal(as_input(pattern(2, 6, 6))));
  EXPECT_EQ(served.requests("fractals_and_fvis.tar"), 1);
}

TEST(Fractals, APlacedArchiveIsCheckedAgainstTheMd5) {
  const fs::path dir = temp_dir("fractals_placed");
  const fs::path root = dir / "root";
  fs::create_directories(root);
  fs::copy_file(write_tar(dir), root / "fractals_and_fvis.tar");
  // The miniature is not the published archive: its MD5 differs, and the message says
  // so and where the real one comes from.
  try {
    make_dataset("fractals", R"({"root": ")" + root.string() + R"(", "download": true})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fractals: "), std::string::npos) << m;
    EXPECT_NE(m.find("3619fb7e2c76130749d97913fdd3ab27"), std::string::npos) << m;
    EXPECT_NE(m.find("1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA"), std::string::npos) << m;
  }
}

TEST(Fractals, MissingDataSaysWhereToGetTheArchive) {
  const fs::path root = temp_dir("fractals_missing");
  try {
    make_dataset("fractals", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fractals: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "fractals_and_fvis/fractals/images").string()), std::string::npos) << m;
    EXPECT_NE(m.find("fractals_and_fvis.tar"), std::string::npos) << m;
    EXPECT_NE(m.find("1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA"), std::string::npos) << m;
    EXPECT_NE(m.find("3619fb7e2c76130749d97913fdd3ab27"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
