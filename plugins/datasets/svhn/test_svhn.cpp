// svhn on a miniature test_32x32.mat written with libmatio (compressed, as the real
// files), served through $OOD_RESOURCES.
#include <matio.h>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;

// X: uint8 [32, 32, 3, n] with X(h, w, c, i) = (i * 50 + c * 10 + h + w) mod 256 (MATLAB's
// column-major order); y: double [n, 1].
void write_svhn_mat(const fs::path& file, const std::vector<double>& labels) {
  const std::size_t n = labels.size();
  std::vector<std::uint8_t> x(32 * 32 * 3 * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t w = 0; w < 32; ++w)
        for (std::size_t h = 0; h < 32; ++h)
          x[h + 32 * (w + 32 * (c + 3 * i))] = static_cast<std::uint8_t>((i * 50 + c * 10 + h + w) % 256);
  fs::create_directories(file.parent_path());
  mat_t* mat = Mat_CreateVer(file.c_str(), nullptr, MAT_FT_MAT5);
  ASSERT_NE(mat, nullptr);
  size_t xdims[4] = {32, 32, 3, n};
  matvar_t* xv = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xdims, x.data(), 0);
  Mat_VarWrite(mat, xv, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(xv);
  std::vector<double> y = labels;
  size_t ydims[2] = {n, 1};
  matvar_t* yv = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ydims, y.data(), 0);
  Mat_VarWrite(mat, yv, MAT_COMPRESSION_ZLIB);
  Mat_VarFree(yv);
  Mat_Close(mat);
}

TEST(Svhn, DownloadsTheMatFileAndMapsTenToZero) {
  const fs::path dir = temp_dir("svhn");
  write_svhn_mat(dir / "src/test_32x32.mat", {10, 1, 9});
  ServedResources served(dir / "server");
  served.serve(dir / "src/test_32x32.mat");
  auto ds = make_dataset("svhn", R"({"root": ")" + (dir / "root").string() + R"(", "split": "test", "download": true})");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_TRUE(ds->labels().equal(at::tensor({0, 1, 9}, at::kLong)));
  const Sample s = ds->get(1);
  ASSERT_EQ(s.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  // channel 2, row 3, column 7 of image 1: 50 + 20 + 3 + 7.
  EXPECT_FLOAT_EQ(s.input[2][3][7].item<float>(), 80.0f / 255);
  EXPECT_FLOAT_EQ(s.input[0][0][31].item<float>(), 81.0f / 255);
}

TEST(Svhn, WrongVariablesAreNamed) {
  const fs::path root = temp_dir("svhn_bad");
  mat_t* mat = Mat_CreateVer((root / "train_32x32.mat").c_str(), nullptr, MAT_FT_MAT5);
  double v[2] = {1, 2};
  size_t dims[2] = {2, 1};
  matvar_t* var = Mat_VarCreate("X", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, v, 0);
  Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE);
  Mat_VarFree(var);
  Mat_Close(mat);
  try {
    make_dataset("svhn", R"({"root": ")" + root.string() + R"("})");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("train_32x32.mat"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::test
