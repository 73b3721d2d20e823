// feature-visualizations on a miniature of PixMix's fractals_and_fvis.tar
// (fractals_and_fvis/{fractals,first_layers_resized256_onevis}/images/), served through
// $OOD_RESOURCES, which gives the Google-Drive-only resource a URL.
#include "folder_set_test.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using folder_set::pattern;
using folder_set::put_png;
using folder_set::put_jpeg;
using folder_set::as_input;

TEST(FeatureVisualizations, ExtractsTheSharedArchiveAndReadsTheVisualizations) {
  const fs::path dir = temp_dir("feature_visualizations");
  const fs::path top = dir / "tree/fractals_and_fvis";
  put_png(top / "fractals/images/fractal_1.png", pattern(9, 3, 3));
  put_png(top / "first_layers_resized256_onevis/images/b.png", pattern(2, 5, 4));
  put_jpeg(top / "first_layers_resized256_onevis/images/a.jpg", pattern(1, 32, 32));
  write_archive(dir / "fractals_and_fvis.tar", tree_entries(dir / "tree", "fractals_and_fvis"));

  ServedResources served(dir / "server");
  served.serve(dir / "fractals_and_fvis.tar");
  const fs::path root = dir / "root";
  auto fvis = make_dataset("feature-visualizations", R"({"root": ")" + root.string() + R"(", "download": true})");
  ASSERT_EQ(fvis->size(), 2);
  EXPECT_TRUE(fvis->labels().equal(at::full({2}, -1, at::kLong)));
  const Sample jpeg = fvis->get(0);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(1, 32, 32)), 0, 8.0 / 255));  // lossy
  EXPECT_EQ(jpeg.label(), -1);
  EXPECT_TRUE(fvis->get(1).input.equal(as_input(pattern(2, 5, 4))));

  // The archive also gave fractals: that dataset is prepared without a second download.
  fs::remove(root / "fractals_and_fvis.tar");
  EXPECT_EQ(make_dataset("feature-visualizations", R"({"root": ")" + root.string() + R"("})")->size(), 2);
  EXPECT_TRUE(fs::is_directory(root / "fractals_and_fvis/fractals/images"));
  EXPECT_EQ(served.requests("fractals_and_fvis.tar"), 1);
}

TEST(FeatureVisualizations, MissingDataSaysWhereToGetTheArchive) {
  const fs::path root = temp_dir("feature_visualizations_missing");
  try {
    make_dataset("feature-visualizations", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("feature-visualizations: data not found"), std::string::npos) << m;
    EXPECT_NE(m.find((root / "fractals_and_fvis/first_layers_resized256_onevis/images").string()),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA"), std::string::npos) << m;
    EXPECT_NE(m.find("3619fb7e2c76130749d97913fdd3ab27"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace ood::test
