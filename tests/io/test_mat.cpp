// The .mat reader on files written here with libmatio itself: MATLAB's column-major
// layout (t[i][j] == A(i+1, j+1)), SVHN's shapes (uint8 32x32x3xN images, double Nx1
// labels; small here), every numeric class, and what is refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <matio.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "ood/error.hpp"
#include "ood/io/mat.hpp"
#include "test_support.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

// A bool tensor (at::tensor of bools is not implemented in LibTorch 1.13).
at::Tensor bools(std::initializer_list<int> values) { return at::tensor(std::vector<int>(values)).to(at::kBool); }

// Creates `file` in `version` and lets `fill` write variables into it.
bool write_mat(const fs::path& file, mat_ft version, const std::function<void(mat_t*)>& fill) {
  mat_t* mat = Mat_CreateVer(file.c_str(), nullptr, version);
  if (!mat) return false;
  fill(mat);
  Mat_Close(mat);
  return true;
}

// Writes one numeric variable of `dims` from a column-major buffer.
template <typename T>
void put(mat_t* mat, const char* name, matio_classes class_type, matio_types data_type, std::vector<std::size_t> dims,
         std::vector<T> column_major, matio_compression compression, int flags = 0) {
  matvar_t* var = Mat_VarCreate(name, class_type, data_type, static_cast<int>(dims.size()), dims.data(),
                                column_major.data(), flags);
  ASSERT_NE(var, nullptr) << name;
  EXPECT_EQ(Mat_VarWrite(mat, var, compression), 0) << name;
  Mat_VarFree(var);
}

void expect_file_error(const std::function<void()>& action, std::initializer_list<std::string> parts) {
  try {
    action();
  } catch (const FileError& e) {
    const std::string message = e.what();
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ood::FileError, got: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected ood::FileError, nothing was thrown";
}

// SVHN in miniature: X is uint8 4x3x2x5 (rows, columns, channels, samples) with
// X(i+1, j+1, k+1, n+1) = (3 * linear) % 251, linear the column-major index; y is a
// double 5x1 column of labels (SVHN writes 10 for the digit 0).
constexpr std::size_t kRows = 4, kCols = 3, kChannels = 2, kSamples = 5;

std::uint8_t x_value(std::size_t i, std::size_t j, std::size_t k, std::size_t n) {
  const std::size_t linear = i + kRows * (j + kCols * (k + kChannels * n));
  return static_cast<std::uint8_t>((3 * linear) % 251);
}

void write_svhn_like(mat_t* mat, matio_compression compression) {
  std::vector<std::uint8_t> x(kRows * kCols * kChannels * kSamples);
  for (std::size_t n = 0; n < kSamples; ++n)
    for (std::size_t k = 0; k < kChannels; ++k)
      for (std::size_t j = 0; j < kCols; ++j)
        for (std::size_t i = 0; i < kRows; ++i) x[i + kRows * (j + kCols * (k + kChannels * n))] = x_value(i, j, k, n);
  put(mat, "X", MAT_C_UINT8, MAT_T_UINT8, {kRows, kCols, kChannels, kSamples}, x, compression);
  put(mat, "y", MAT_C_DOUBLE, MAT_T_DOUBLE, {kSamples, 1}, std::vector<double>{10, 1, 2, 3, 9}, compression);
}

void expect_svhn_like(const fs::path& file) {
  SCOPED_TRACE(file.string());
  const at::Tensor x = read_mat_variable(file, "X");
  ASSERT_EQ(x.scalar_type(), at::kByte);
  ASSERT_EQ(x.sizes(), (std::vector<std::int64_t>{kRows, kCols, kChannels, kSamples}));
  EXPECT_TRUE(x.is_contiguous());
  const auto acc = x.accessor<std::uint8_t, 4>();
  for (std::size_t n = 0; n < kSamples; ++n)
    for (std::size_t k = 0; k < kChannels; ++k)
      for (std::size_t j = 0; j < kCols; ++j)
        for (std::size_t i = 0; i < kRows; ++i)
          ASSERT_EQ(acc[i][j][k][n], x_value(i, j, k, n)) << i << "," << j << "," << k << "," << n;
  const at::Tensor y = read_mat_variable(file, "y");
  EXPECT_EQ(y.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(y, at::tensor({10.0, 1.0, 2.0, 3.0, 9.0}, at::kDouble).reshape({5, 1})));
}

TEST(MatFile, SvhnLikeUncompressed) {
  const fs::path file = test::temp_dir("mat-plain") / "train_32x32.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_NONE); }));
  expect_svhn_like(file);
}

TEST(MatFile, SvhnLikeCompressed) {
  const fs::path file = test::temp_dir("mat-zlib") / "train_32x32.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_ZLIB); }));
  expect_svhn_like(file);
}

TEST(MatFile, SvhnLikeVersion73WhenMatioHasHdf5) {
  const fs::path file = test::temp_dir("mat-73") / "train_32x32.mat";
  if (!write_mat(file, MAT_FT_MAT73, [](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_NONE); }))
    GTEST_SKIP() << "libmatio was built without HDF5 (no MAT 7.3)";
  expect_svhn_like(file);
}

TEST(MatFile, MatrixIndexingFollowsMatlab) {
  // A = [1 2 3; 4 5 6] is stored column by column: 1 4 2 5 3 6.
  const fs::path file = test::temp_dir("mat-matrix") / "a.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) {
    put(m, "A", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 3}, std::vector<double>{1, 4, 2, 5, 3, 6}, MAT_COMPRESSION_NONE);
  }));
  EXPECT_TRUE(at::equal(read_mat_variable(file, "A"), at::tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}).reshape({2, 3})));
}

TEST(MatFile, EveryNumericClass) {
  const fs::path file = test::temp_dir("mat-classes") / "classes.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) {
    const auto z = MAT_COMPRESSION_ZLIB;
    put(m, "i8", MAT_C_INT8, MAT_T_INT8, {1, 3}, std::vector<std::int8_t>{-128, 0, 127}, z);
    put(m, "i16", MAT_C_INT16, MAT_T_INT16, {1, 3}, std::vector<std::int16_t>{-32768, 1, 32767}, z);
    put(m, "i32", MAT_C_INT32, MAT_T_INT32, {1, 3}, std::vector<std::int32_t>{INT32_MIN, 2, INT32_MAX}, z);
    put(m, "i64", MAT_C_INT64, MAT_T_INT64, {1, 3}, std::vector<std::int64_t>{INT64_MIN, 3, INT64_MAX}, z);
    put(m, "u16", MAT_C_UINT16, MAT_T_UINT16, {1, 3}, std::vector<std::uint16_t>{0, 40000, 65535}, z);
    put(m, "u32", MAT_C_UINT32, MAT_T_UINT32, {1, 3}, std::vector<std::uint32_t>{0, 3000000000u, 4294967295u}, z);
    put(m, "u64", MAT_C_UINT64, MAT_T_UINT64, {1, 2}, std::vector<std::uint64_t>{0, std::uint64_t{1} << 62}, z);
    put(m, "u64big", MAT_C_UINT64, MAT_T_UINT64, {1, 1}, std::vector<std::uint64_t>{~std::uint64_t{0}}, z);
    put(m, "single", MAT_C_SINGLE, MAT_T_SINGLE, {1, 3}, std::vector<float>{-1.5f, 0.0f, 3.25f}, z);
    put(m, "mask", MAT_C_UINT8, MAT_T_UINT8, {1, 3}, std::vector<std::uint8_t>{1, 0, 1}, z, MAT_F_LOGICAL);
  }));
  const auto row = [&](const char* name) { return read_mat_variable(file, name).reshape({-1}); };
  EXPECT_TRUE(at::equal(row("i8"), at::tensor({-128, 0, 127}, at::kChar)));
  EXPECT_TRUE(at::equal(row("i16"), at::tensor({-32768, 1, 32767}, at::kShort)));
  EXPECT_TRUE(at::equal(row("i32"), at::tensor({INT32_MIN, 2, INT32_MAX}, at::kInt)));
  EXPECT_TRUE(at::equal(row("i64"), at::tensor(std::vector<std::int64_t>{INT64_MIN, 3, INT64_MAX}, at::kLong)));
  EXPECT_TRUE(at::equal(row("u16"), at::tensor({0, 40000, 65535}, at::kInt)));
  EXPECT_TRUE(at::equal(row("u32"), at::tensor(std::vector<std::int64_t>{0, 3000000000LL, 4294967295LL}, at::kLong)));
  EXPECT_TRUE(at::equal(row("u64"), at::tensor(std::vector<std::int64_t>{0, std::int64_t{1} << 62}, at::kLong)));
  expect_file_error([&] { read_mat_variable(file, "u64big"); }, {file.string(), "variable 'u64big'", "uint64"});
  EXPECT_TRUE(at::equal(row("single"), at::tensor({-1.5f, 0.0f, 3.25f})));
  EXPECT_TRUE(at::equal(row("mask"), bools({1, 0, 1})));
}

TEST(MatFile, MissingVariableListsThePresentOnes) {
  const fs::path file = test::temp_dir("mat-missing") / "test_32x32.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_ZLIB); }));
  expect_file_error([&] { read_mat_variable(file, "labels"); }, {file.string(), "no variable 'labels'", "X, y"});
}

TEST(MatFile, NonNumericClassesAreRefusedByName) {
  const fs::path file = test::temp_dir("mat-refused") / "mixed.mat";
  ASSERT_TRUE(write_mat(file, MAT_FT_MAT5, [](mat_t* m) {
    std::size_t dims[2] = {1, 2};
    double re[2] = {1, 2}, im[2] = {3, 4};
    mat_complex_split_t split{re, im};
    matvar_t* complex = Mat_VarCreate("z", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &split, MAT_F_COMPLEX);
    Mat_VarWrite(m, complex, MAT_COMPRESSION_NONE);
    Mat_VarFree(complex);

    std::size_t text_dims[2] = {1, 3};
    char text[] = "abc";
    matvar_t* chars = Mat_VarCreate("s", MAT_C_CHAR, MAT_T_UINT8, 2, text_dims, text, 0);
    Mat_VarWrite(m, chars, MAT_COMPRESSION_NONE);
    Mat_VarFree(chars);

    std::size_t one[2] = {1, 1};
    double value = 5;
    matvar_t* inner = Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, one, &value, 0);
    matvar_t* cells[1] = {inner};
    matvar_t* cell = Mat_VarCreate("c", MAT_C_CELL, MAT_T_CELL, 2, one, cells, 0);
    Mat_VarWrite(m, cell, MAT_COMPRESSION_NONE);
    Mat_VarFree(cell);  // frees `inner` too

    const char* fields[] = {"a", nullptr};
    matvar_t* record = Mat_VarCreateStruct2("r", 2, one, fields);
    Mat_VarWrite(m, record, MAT_COMPRESSION_NONE);
    Mat_VarFree(record);
  }));
  expect_file_error([&] { read_mat_variable(file, "z"); }, {file.string(), "variable 'z'", "complex"});
  expect_file_error([&] { read_mat_variable(file, "s"); }, {file.string(), "variable 's'", "class char"});
  expect_file_error([&] { read_mat_variable(file, "c"); }, {file.string(), "variable 'c'", "class cell"});
  expect_file_error([&] { read_mat_variable(file, "r"); }, {file.string(), "variable 'r'", "class struct"});
}

TEST(MatFile, BrokenFiles) {
  const fs::path dir = test::temp_dir("mat-broken");
  expect_file_error([&] { read_mat_variable(dir / "absent.mat", "X"); }, {(dir / "absent.mat").string(), "no such file"});
  {
    std::ofstream out(dir / "text.mat");
    out << "this is not a MATLAB file, just some text that is long enough to have a header\n";
  }
  expect_file_error([&] { read_mat_variable(dir / "text.mat", "X"); }, {(dir / "text.mat").string()});
  // Truncated files, compressed or not: an error naming the file, never a crash.
  for (const auto compression : {MAT_COMPRESSION_NONE, MAT_COMPRESSION_ZLIB}) {
    const fs::path whole = dir / "whole.mat";
    ASSERT_TRUE(write_mat(whole, MAT_FT_MAT5, [&](mat_t* m) { write_svhn_like(m, compression); }));
    std::ifstream in(whole, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t keep : {std::size_t{100}, std::size_t{150}, std::size_t{200}}) {
      SCOPED_TRACE("compression " + std::to_string(compression) + ", cut at " + std::to_string(keep));
      const fs::path cut = dir / ("cut-" + std::to_string(keep) + ".mat");
      std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
      expect_file_error([&] { read_mat_variable(cut, "X"); }, {cut.string()});
    }
  }
  // A dimensions part declaring 4 GiB inside a small matrix (a file found by fuzzing made
  // libmatio allocate that much): refused before libmatio reads it.
  {
    const fs::path whole = dir / "whole.mat";
    ASSERT_TRUE(write_mat(whole, MAT_FT_MAT5, [&](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_NONE); }));
    std::ifstream in(whole, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Header 128 bytes, the matrix tag 8, its array-flags part 16: the dimensions part's
    // tag is at byte 152, its byte count at 156 (little-endian file).
    ASSERT_EQ(bytes[152], 5);  // miINT32
    bytes.replace(156, 4, std::string("\xf0\xff\xff\xff", 4));
    const fs::path corrupt = dir / "huge-dims.mat";
    std::ofstream(corrupt, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    expect_file_error([&] { read_mat_variable(corrupt, "X"); },
                      {corrupt.string(), "corrupt .mat file: the part at byte 152 declares 4294967280 bytes"});
  }
  // The same for 7.3 (HDF5) files, when libmatio has HDF5.
  const fs::path whole73 = dir / "whole73.mat";
  if (write_mat(whole73, MAT_FT_MAT73, [](mat_t* m) { write_svhn_like(m, MAT_COMPRESSION_NONE); })) {
    std::ifstream in(whole73, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const fs::path cut = dir / "cut73.mat";
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    expect_file_error([&] { read_mat_variable(cut, "X"); }, {cut.string()});
  }
}

}  // namespace
}  // namespace ood::io
