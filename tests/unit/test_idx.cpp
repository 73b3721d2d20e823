// The IDX reader on hand-made files: every data type, big-endian values, and errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>

#include "ood/error.hpp"
#include "ood/io/idx.hpp"
#include "test_support.hpp"

namespace ood::io {
namespace {

std::vector<std::uint8_t> header(std::uint8_t type, std::vector<std::uint32_t> dims) {
  std::vector<std::uint8_t> out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  return out;
}

std::string error_of(const std::vector<std::uint8_t>& bytes) {
  try {
    parse_idx(bytes, "f.idx");
  } catch (const FileError& e) {
    return e.what();
  }
  return "";
}

TEST(Idx, Uint8Images) {
  auto bytes = header(0x08, {2, 2, 3});
  for (int i = 0; i < 12; ++i) bytes.push_back(static_cast<std::uint8_t>(i * 20));
  const at::Tensor t = parse_idx(bytes, "f");
  EXPECT_EQ(t.scalar_type(), at::kByte);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(t[1][0][2].item<int>(), 8 * 20);
}

// A zero dimension is a valid, empty tensor (found by fuzzing: the copy of zero bytes
// passed LibTorch's null data pointer to memcpy, undefined behaviour).
TEST(Idx, ZeroDimensionGivesAnEmptyTensor) {
  for (std::uint8_t type : {0x08, 0x0B, 0x0D}) {
    const at::Tensor t = parse_idx(header(type, {0, 5}), "f");
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{0, 5}));
  }
}

TEST(Idx, BigEndianWideTypes) {
  auto i32 = header(0x0C, {2});
  for (std::uint8_t b : {0x00, 0x01, 0x00, 0x02, 0xFF, 0xFF, 0xFF, 0xFE}) i32.push_back(b);
  const at::Tensor t = parse_idx(i32, "f");
  EXPECT_EQ(t.scalar_type(), at::kInt);
  EXPECT_EQ(t[0].item<int>(), 65538);
  EXPECT_EQ(t[1].item<int>(), -2);
  auto f32 = header(0x0D, {1});
  for (std::uint8_t b : {0x3F, 0xC0, 0x00, 0x00}) f32.push_back(b);  // 1.5f
  EXPECT_EQ(parse_idx(f32, "f")[0].item<float>(), 1.5f);
  auto f64 = header(0x0E, {1});
  for (std::uint8_t b : {0xC0, 0x04, 0, 0, 0, 0, 0, 0}) f64.push_back(b);  // -2.5
  EXPECT_EQ(parse_idx(f64, "f")[0].item<double>(), -2.5);
  auto i16 = header(0x0B, {1});
  for (std::uint8_t b : {0x80, 0x00}) i16.push_back(b);
  EXPECT_EQ(parse_idx(i16, "f")[0].item<int16_t>(), -32768);
  auto i8 = header(0x09, {1});
  i8.push_back(0xFF);
  EXPECT_EQ(parse_idx(i8, "f")[0].item<int8_t>(), -1);
}

TEST(Idx, CorruptFiles) {
  EXPECT_NE(error_of({}).find("f.idx: not an IDX file"), std::string::npos);
  EXPECT_NE(error_of({1, 0, 8, 1, 0, 0, 0, 0}).find("bad magic"), std::string::npos);
  EXPECT_NE(error_of(header(0x07, {1})).find("unknown IDX data type 0x07"), std::string::npos);
  EXPECT_NE(error_of({0, 0, 8, 0}).find("0 dimensions"), std::string::npos);
  EXPECT_NE(error_of({0, 0, 8, 2, 0, 0}).find("truncated IDX header"), std::string::npos);
  auto short_data = header(0x08, {4});
  short_data.push_back(1);
  EXPECT_NE(error_of(short_data).find("truncated IDX data: header promises 4 bytes, file has 1"), std::string::npos);
  auto long_data = header(0x08, {1});
  long_data.insert(long_data.end(), {1, 2});
  EXPECT_NE(error_of(long_data).find("1 bytes after the data"), std::string::npos);
  EXPECT_NE(error_of(header(0x08, {0xFFFFFFFF})).find("implausible"), std::string::npos);
}

TEST(Idx, GzipFilesAndMissingFiles) {
  EXPECT_THROW(read_idx("/nonexistent/file.gz"), FileError);
  const auto dir = test::temp_dir("idx_gz");
  std::ofstream(dir / "bad.gz", std::ios::binary).write("\x1f\x8b\x08\x00garbage", 11);
  try {
    read_idx(dir / "bad.gz");
    ADD_FAILURE();
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.gz"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ood::io
