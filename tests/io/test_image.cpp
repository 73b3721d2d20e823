// JPEG/PNG decoding and encoding (ood/io/image.hpp): pixel values against what PIL 9.4
// decodes from the same files (tests/fixtures/images/expected.txt, written by
// generate.py there), round trips of every channel layout, the channel modes, and that
// every broken input is an ood::FileError naming the file, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<std::uint8_t> read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

fs::path image_fixture(const std::string& name) { return test::fixture("images/" + name); }

// The message of the FileError that decoding `bytes` raises ("" when it decodes).
std::string decode_error(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  try {
    decode_image(bytes.data(), bytes.size(), name);
  } catch (const FileError& e) {
    return e.what();
  }
  return "";
}

std::string read_error(const fs::path& file, ImageMode mode = ImageMode::Keep) {
  try {
    read_image(file, mode);
  } catch (const FileError& e) {
    return e.what();
  }
  return "";
}

// A uint8 [H, W, C] image with every value used and some structure.
at::Tensor pattern_image(std::int64_t height, std::int64_t width, std::int64_t channels, std::uint64_t seed = 0) {
  at::Tensor out = at::empty({height, width, channels}, at::kByte);
  auto* p = out.data_ptr<std::uint8_t>();
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<std::uint8_t>(state >> 56);
  }
  return out;
}

// A smooth image (gradients), which JPEG reproduces closely.
at::Tensor smooth_image(std::int64_t height, std::int64_t width, std::int64_t channels) {
  at::Tensor out = at::empty({height, width, channels}, at::kByte);
  auto acc = out.accessor<std::uint8_t, 3>();
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x)
      for (std::int64_t c = 0; c < channels; ++c)
        acc[y][x][c] = static_cast<std::uint8_t>(x * 150 / (width - 1) + y * 60 / (height - 1) + c * 40);
  return out;
}

std::int64_t max_abs_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kInt) - b.to(at::kInt)).abs().max().item<std::int64_t>();
}

struct ExpectedImage {
  std::string file;
  std::string mode;
  int tolerance = 0;
  at::Tensor pixels;  // uint8 [H, W, C]
};

std::vector<ExpectedImage> expected_images() {
  std::ifstream in(image_fixture("expected.txt"));
  std::vector<ExpectedImage> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    ExpectedImage e;
    std::int64_t h = 0, w = 0, c = 0;
    std::string hex;
    fields >> e.file >> e.mode >> h >> w >> c >> e.tolerance >> hex;
    if (!fields || static_cast<std::int64_t>(hex.size()) != 2 * h * w * c)
      throw std::runtime_error("malformed line in expected.txt: " + line.substr(0, 80));
    e.pixels = at::empty({h, w, c}, at::kByte);
    auto* p = e.pixels.data_ptr<std::uint8_t>();
    for (std::size_t i = 0; i < hex.size(); i += 2) p[i / 2] = static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16));
    out.push_back(std::move(e));
  }
  return out;
}

ImageMode mode_named(const std::string& name) {
  if (name == "L") return ImageMode::Grey;
  if (name == "RGB") return ImageMode::Rgb;
  return ImageMode::Keep;
}

// ---- against PIL -----------------------------------------------------------------

TEST(ImagePil, EveryFixtureMatchesPil) {
  const auto expected = expected_images();
  ASSERT_GE(expected.size(), 40u);
  for (const auto& e : expected) {
    SCOPED_TRACE(e.file + " mode " + e.mode);
    const at::Tensor decoded = read_image(image_fixture(e.file), mode_named(e.mode));
    ASSERT_EQ(decoded.scalar_type(), at::kByte);
    ASSERT_EQ(decoded.sizes(), e.pixels.sizes());
    EXPECT_LE(max_abs_difference(decoded, e.pixels), e.tolerance);
  }
}

// The JPEG decoder is the same libjpeg-turbo PIL uses, with the same (accurate) IDCT
// and fancy upsampling: the pixels are identical, not merely close.
TEST(ImagePil, JpegPixelsIdenticalToPil) {
  for (const auto& e : expected_images()) {
    if (e.file.find(".jpg") == std::string::npos) continue;
    SCOPED_TRACE(e.file + " mode " + e.mode);
    EXPECT_TRUE(at::equal(read_image(image_fixture(e.file), mode_named(e.mode)), e.pixels));
  }
}

TEST(ImagePil, KeptChannelCountsFollowPil) {
  const std::vector<std::pair<std::string, std::int64_t>> channels = {
      {"grey.png", 1},        {"grey_alpha.png", 2},   {"rgb.png", 3},       {"rgba.png", 4},
      {"palette.png", 3},     {"palette_alpha.png", 4}, {"grey16.png", 1},   {"rgb16.png", 3},
      {"rgba16.png", 4},      {"rgb_colorkey.png", 3}, {"rgb_gamma.png", 3},  {"rgb16_gamma.png", 3}, {"rgb.jpg", 3},       {"grey.jpg", 1},
      {"progressive.jpg", 3}, {"cmyk.jpg", 3}};
  for (const auto& [file, count] : channels) EXPECT_EQ(read_image(image_fixture(file)).size(2), count) << file;
}

// ---- round trips ---------------------------------------------------------------------

TEST(ImagePng, RoundTripEveryChannelCount) {
  const fs::path dir = test::temp_dir("image-png-round-trip");
  for (std::int64_t channels = 1; channels <= 4; ++channels) {
    SCOPED_TRACE(channels);
    at::Tensor image = pattern_image(13, 21, channels, static_cast<std::uint64_t>(channels));
    if (channels == 2 || channels == 4) image.select(2, channels - 1).slice(0, 0, 2).fill_(0);  // transparent
    const fs::path file = dir / ("image" + std::to_string(channels) + ".png");
    write_png(file, image);
    EXPECT_TRUE(at::equal(read_image(file), image));  // colour of transparent pixels kept
    const auto bytes = read_bytes(file);
    EXPECT_TRUE(looks_like_image(bytes.data(), bytes.size()));
    EXPECT_TRUE(at::equal(decode_image(bytes.data(), bytes.size(), "memory"), image));
  }
  // Nothing but the four files: the temporary names were renamed away.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 4u);
}

// PIL ignores gAMA; libpng's simplified API would gamma-convert a linear (gAMA 1.0)
// file to sRGB (64 -> 136). The same pixels with and without the chunk decode alike.
TEST(ImagePng, GammaChunkIgnoredAsPil) {
  EXPECT_TRUE(at::equal(read_image(image_fixture("rgb_gamma.png")), read_image(image_fixture("rgb.png"))));
  EXPECT_TRUE(at::equal(read_image(image_fixture("rgb16_gamma.png")), read_image(image_fixture("rgb16.png"))));
}

TEST(ImagePng, NonContiguousInputAndOverwrite) {
  const fs::path file = test::temp_dir("image-png-strided") / "image.png";
  const at::Tensor chw = pattern_image(3, 9, 7);  // viewed as [H=9, W=7, C=3] through a permute
  const at::Tensor hwc = chw.permute({1, 2, 0});
  write_png(file, pattern_image(2, 2, 1));
  write_png(file, hwc);  // replaces the first file
  EXPECT_TRUE(at::equal(read_image(file), hwc.contiguous()));
}

TEST(ImageJpeg, RoundTripGreyAndRgb) {
  const fs::path dir = test::temp_dir("image-jpeg-round-trip");
  for (const std::int64_t channels : {1, 3}) {
    SCOPED_TRACE(channels);
    const at::Tensor image = smooth_image(37, 53, channels);
    const fs::path file = dir / ("image" + std::to_string(channels) + ".jpg");
    write_jpeg(file, image, 95);
    const at::Tensor decoded = read_image(file);
    ASSERT_EQ(decoded.sizes(), image.sizes());
    // Lossy, but close at quality 95 on a smooth image.
    const double mean_error = (decoded.to(at::kFloat) - image.to(at::kFloat)).abs().mean().item<double>();
    EXPECT_LT(mean_error, 3.0);
  }
}

TEST(ImageJpeg, QualityChangesSizeAndIsChecked) {
  const fs::path dir = test::temp_dir("image-jpeg-quality");
  const at::Tensor image = pattern_image(32, 32, 3);
  write_jpeg(dir / "low.jpg", image, 10);
  write_jpeg(dir / "high.jpg", image, 100);
  EXPECT_LT(fs::file_size(dir / "low.jpg"), fs::file_size(dir / "high.jpg"));
  EXPECT_THROW(write_jpeg(dir / "bad.jpg", image, 0), InvalidArgument);
  EXPECT_THROW(write_jpeg(dir / "bad.jpg", image, 101), InvalidArgument);
}

TEST(ImageWrite, RejectsWhatItCannotEncode) {
  const fs::path dir = test::temp_dir("image-write-errors");
  EXPECT_THROW(write_png(dir / "f.png", at::zeros({4, 4, 3})), ShapeError);            // float
  EXPECT_THROW(write_png(dir / "f.png", at::zeros({4, 4, 5}, at::kByte)), ShapeError);  // 5 channels
  EXPECT_THROW(write_png(dir / "f.png", at::zeros({4, 4}, at::kByte)), ShapeError);     // no channel dim
  EXPECT_THROW(write_jpeg(dir / "f.jpg", at::zeros({4, 4, 4}, at::kByte)), ShapeError); // RGBA
  EXPECT_THROW(write_jpeg(dir / "f.jpg", at::zeros({0, 4, 3}, at::kByte)), ShapeError); // empty
  // Missing folders are created; a folder that cannot be (a file is in the way) is an error.
  write_png(dir / "new-dir" / "f.png", at::zeros({4, 4, 3}, at::kByte));
  EXPECT_TRUE(fs::is_regular_file(dir / "new-dir" / "f.png"));
  std::ofstream(dir / "a-file") << "x";
  try {
    write_png(dir / "a-file" / "f.png", at::zeros({4, 4, 3}, at::kByte));
    FAIL() << "expected FileError";
  } catch (const FileError& e) {
    EXPECT_THAT(e.what(), HasSubstr("a-file"));
  }
}

// ---- modes ---------------------------------------------------------------------------

TEST(ImageModes, GreyIsPilsRoundedLuma) {
  // PIL 9's convert("L") rounds (16-bit fixed point): (0, 0, 5) -> 1 and (1, 2, 3) -> 2,
  // where the truncated R*299/1000 + G*587/1000 + B*114/1000 would give 0 and 1.
  at::Tensor rgb = at::zeros({1, 4, 3}, at::kByte);
  const std::uint8_t values[4][3] = {{0, 0, 5}, {1, 2, 3}, {200, 100, 7}, {255, 255, 255}};
  for (int x = 0; x < 4; ++x)
    for (int c = 0; c < 3; ++c) rgb[0][x][c] = values[x][c];
  const fs::path file = test::temp_dir("image-grey") / "rgb.png";
  write_png(file, rgb);
  const at::Tensor grey = read_image(file, ImageMode::Grey);
  ASSERT_EQ(grey.sizes(), (std::vector<std::int64_t>{1, 4, 1}));
  EXPECT_EQ(grey[0][0][0].item<int>(), 1);
  EXPECT_EQ(grey[0][1][0].item<int>(), 2);
  EXPECT_EQ(grey[0][2][0].item<int>(), 119);
  EXPECT_EQ(grey[0][3][0].item<int>(), 255);
}

TEST(ImageModes, RgbRepeatsGreyAndDropsAlpha) {
  const fs::path dir = test::temp_dir("image-modes");
  const at::Tensor grey_alpha = pattern_image(5, 6, 2);
  write_png(dir / "ga.png", grey_alpha);
  const at::Tensor rgb = read_image(dir / "ga.png", ImageMode::Rgb);
  ASSERT_EQ(rgb.sizes(), (std::vector<std::int64_t>{5, 6, 3}));
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(at::equal(rgb.select(2, c), grey_alpha.select(2, 0)));
  EXPECT_TRUE(at::equal(read_image(dir / "ga.png", ImageMode::Grey), grey_alpha.narrow(2, 0, 1)));

  const at::Tensor rgba = pattern_image(5, 6, 4, 7);
  write_png(dir / "rgba.png", rgba);
  EXPECT_TRUE(at::equal(read_image(dir / "rgba.png", ImageMode::Rgb), rgba.narrow(2, 0, 3)));
  // Grey of RGBA ignores alpha (as PIL): the same as grey of its RGB part.
  write_png(dir / "rgb.png", rgba.narrow(2, 0, 3).contiguous());
  EXPECT_TRUE(at::equal(read_image(dir / "rgba.png", ImageMode::Grey), read_image(dir / "rgb.png", ImageMode::Grey)));
  EXPECT_TRUE(read_image(dir / "rgb.png", ImageMode::Rgb).is_contiguous());
}

// torchvision's ToTensor is img.permute(2, 0, 1).contiguous(), .float(), .div(255):
// the same floats, bit for bit, for every uint8 value and channel count.
TEST(ImageToTensor, TorchvisionToTensor) {
  for (std::int64_t channels = 1; channels <= 4; ++channels) {
    const at::Tensor every_value = at::arange(256 * channels, at::kInt).remainder(256).to(at::kByte);
    const at::Tensor hwc = at::cat({every_value, pattern_image(16, 16, channels).flatten()}).view({-1, 16, channels});
    const at::Tensor torchvision = hwc.permute({2, 0, 1}).contiguous().to(at::kFloat).div(255);
    EXPECT_TRUE(at::equal(image_to_tensor(hwc), torchvision)) << channels;
    EXPECT_TRUE(at::equal(image_to_tensor(hwc.transpose(0, 1)), torchvision.transpose(1, 2))) << "strided input";
  }
  const at::Tensor hwc = pattern_image(4, 5, 3);
  const at::Tensor chw = image_to_tensor(hwc);
  EXPECT_EQ(chw.scalar_type(), at::kFloat);
  EXPECT_EQ(chw.sizes(), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_TRUE(chw.is_contiguous());
  EXPECT_FLOAT_EQ(image_to_tensor(at::full({1, 1, 1}, 255, at::kByte)).item<float>(), 1.0f);
  EXPECT_THROW(image_to_tensor(at::zeros({4, 5, 3})), ShapeError);
  EXPECT_THROW(image_to_tensor(at::zeros({4, 5}, at::kByte)), ShapeError);
}

// ---- errors ----------------------------------------------------------------------------

TEST(ImageErrors, FormatIsToldByContentNotName) {
  const fs::path dir = test::temp_dir("image-content");
  // A PNG named .jpg and a JPEG named .png (as in some of pytorch-ood's sets).
  fs::copy_file(image_fixture("rgb.png"), dir / "really_png.jpg");
  fs::copy_file(image_fixture("rgb.jpg"), dir / "really_jpeg.png");
  EXPECT_TRUE(at::equal(read_image(dir / "really_png.jpg"), read_image(image_fixture("rgb.png"))));
  EXPECT_TRUE(at::equal(read_image(dir / "really_jpeg.png"), read_image(image_fixture("rgb.jpg"))));
}

TEST(ImageErrors, UnknownFormatsNameTheFile) {
  const fs::path dir = test::temp_dir("image-unknown");
  using namespace std::string_literals;  // the headers hold NUL bytes
  const std::vector<std::pair<std::string, std::string>> files = {
      {"text.jpg", "hello, world"s}, {"bitmap.png", "BM\x36\x00\x00\x00"s}, {"anim.jpg", "GIF89a....."s},
      {"photo.png", "RIFF\x10\x00\x00\x00WEBPVP8 "s}, {"empty.png", ""s}};
  const std::vector<std::string> hints = {"unknown format", "BMP", "GIF", "WebP", "empty"};
  for (std::size_t i = 0; i < files.size(); ++i) {
    const fs::path file = dir / files[i].first;
    write_bytes(file, std::vector<std::uint8_t>(files[i].second.begin(), files[i].second.end()));
    const std::string message = read_error(file);
    EXPECT_THAT(message, HasSubstr(file.string()));
    EXPECT_THAT(message, HasSubstr("not a JPEG or PNG"));
    EXPECT_THAT(message, HasSubstr(hints[i]));
    EXPECT_FALSE(looks_like_image(reinterpret_cast<const std::uint8_t*>(files[i].second.data()), files[i].second.size()));
  }
  EXPECT_THAT(decode_error({}, "archive.zip:member.png"), HasSubstr("archive.zip:member.png"));
  EXPECT_THROW(decode_image(nullptr, 0, "null"), FileError);
}

TEST(ImageErrors, MissingFileAndDirectory) {
  const fs::path dir = test::temp_dir("image-missing");
  EXPECT_THAT(read_error(dir / "absent.png"), HasSubstr((dir / "absent.png").string()));
  EXPECT_THAT(read_error(dir), HasSubstr("directory"));
}

TEST(ImageErrors, TruncatedJpegIsAnErrorNotGreyPixels) {
  const auto bytes = read_bytes(image_fixture("rgb.jpg"));
  ASSERT_GT(bytes.size(), 400u);
  for (const std::size_t keep : {std::size_t{2}, std::size_t{20}, std::size_t{200}, bytes.size() / 2,
                                 bytes.size() - 40, bytes.size() - 3}) {
    SCOPED_TRACE(keep);
    const std::vector<std::uint8_t> truncated(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep));
    const std::string message = decode_error(truncated, "set.tar:cats/001.jpg");
    EXPECT_THAT(message, HasSubstr("set.tar:cats/001.jpg"));
  }
  // Also the progressive variant, whose scans end early differently.
  const auto progressive = read_bytes(image_fixture("progressive.jpg"));
  EXPECT_THAT(decode_error({progressive.begin(), progressive.begin() + static_cast<std::ptrdiff_t>(progressive.size() / 2)},
                           "p.jpg"),
              HasSubstr("p.jpg"));
}

TEST(ImageErrors, TruncatedAndCorruptPng) {
  const auto bytes = read_bytes(image_fixture("rgb.png"));
  for (const std::size_t keep : {std::size_t{8}, std::size_t{30}, bytes.size() / 2, bytes.size() - 13}) {
    SCOPED_TRACE(keep);
    const std::string message =
        decode_error({bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)}, "cut.png");
    EXPECT_THAT(message, HasSubstr("cut.png"));
  }
  // A flipped byte inside IDAT: the CRC (or zlib) catches it.
  auto corrupt = bytes;
  const std::string idat = "IDAT";
  const auto at = std::search(corrupt.begin(), corrupt.end(), idat.begin(), idat.end());
  ASSERT_NE(at, corrupt.end());
  at[10] ^= 0x5A;
  EXPECT_THAT(decode_error(corrupt, "flipped.png"), HasSubstr("flipped.png"));
}

TEST(ImageErrors, GarbageAfterMagicBytes) {
  std::vector<std::uint8_t> jpeg = {0xFF, 0xD8, 0xFF};
  jpeg.resize(100, 0x00);
  EXPECT_THAT(decode_error(jpeg, "g.jpg"), HasSubstr("g.jpg"));
  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  png.resize(100, 0x42);
  EXPECT_THAT(decode_error(png, "g.png"), HasSubstr("g.png"));
}

// Every prefix length and byte flip of small fixtures either decodes or raises
// FileError: no crash, no other exception type, no grey-padded success for a cut
// JPEG.
TEST(ImageErrors, DamagedFixturesNeverCrash) {
  for (const std::string name : {"rgb.jpg", "grey.jpg", "progressive.jpg", "cmyk.jpg", "rgba.png", "palette_alpha.png",
                                 "grey16.png"}) {
    SCOPED_TRACE(name);
    const auto bytes = read_bytes(image_fixture(name));
    for (std::size_t keep = 0; keep < bytes.size(); keep += 7) {
      const std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep));
      try {
        decode_image(prefix.data(), prefix.size(), name);
        // Only a PNG cut after its last IDAT (missing IEND) may still decode.
        EXPECT_NE(name.substr(name.size() - 4), ".jpg") << "a JPEG cut to " << keep << " bytes decoded";
      } catch (const FileError& e) {
        EXPECT_THAT(e.what(), HasSubstr(name));
      }
    }
    std::uint64_t state = 12345;
    for (int trial = 0; trial < 300; ++trial) {
      auto damaged = bytes;
      for (int flips = 0; flips < 3; ++flips) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        damaged[(state >> 33) % damaged.size()] ^= static_cast<std::uint8_t>(1 + (state >> 20) % 255);
      }
      try {
        decode_image(damaged.data(), damaged.size(), name);
      } catch (const FileError& e) {
        EXPECT_THAT(e.what(), HasSubstr(name));
      }
    }
  }
}

// libjpeg-turbo 2.1 leaves its decoder mid-header after a failed header read; the
// next (valid) file on the same thread must still decode.
TEST(ImageErrors, DecoderUsableAfterEveryKindOfFailure) {
  const auto bytes = read_bytes(image_fixture("rgb.jpg"));
  const at::Tensor reference = decode_image(bytes.data(), bytes.size(), "rgb.jpg");
  for (std::size_t keep = 3; keep < bytes.size(); keep += 5) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep));
    EXPECT_THROW(decode_image(cut.data(), cut.size(), "cut.jpg"), FileError) << keep;
    EXPECT_TRUE(at::equal(decode_image(bytes.data(), bytes.size(), "rgb.jpg"), reference)) << "after a cut at " << keep;
  }
}

// ---- decompression bombs ------------------------------------------------------------------

TEST(ImageBomb, HugeHeadersRejectedBeforeAllocating) {
  // 100000 x 100000 RGB would need 30 GB; the header alone must stop it.
  const std::string png_message = read_error(image_fixture("bomb.png"));
  EXPECT_THAT(png_message, HasSubstr("bomb.png"));
  EXPECT_THAT(png_message, HasSubstr("100000x100000"));
  EXPECT_THAT(png_message, HasSubstr("exceeds"));
  const std::string jpeg_message = read_error(image_fixture("bomb.jpg"));
  EXPECT_THAT(jpeg_message, HasSubstr("bomb.jpg"));
  EXPECT_THAT(jpeg_message, HasSubstr("65000x65000"));
}

TEST(ImageBomb, LimitIsAParameter) {
  for (const std::string name : {"rgb.png", "rgb.jpg"}) {
    const auto bytes = read_bytes(image_fixture(name));
    const std::int64_t pixels = 11 * 17;
    EXPECT_NO_THROW(decode_image(bytes.data(), bytes.size(), name, ImageMode::Keep, pixels));
    EXPECT_THROW(decode_image(bytes.data(), bytes.size(), name, ImageMode::Keep, pixels - 1), FileError);
  }
}

// ---- threads ------------------------------------------------------------------------------

// Loader threads decode at once; each keeps its own TurboJPEG handle, which must stay
// usable after a failed decode.
TEST(ImageThreads, ConcurrentDecodesAgreeAndSurviveErrors) {
  const auto jpeg = read_bytes(image_fixture("rgb.jpg"));
  const auto png = read_bytes(image_fixture("rgba.png"));
  const std::vector<std::uint8_t> cut(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() / 2));
  const at::Tensor jpeg_reference = decode_image(jpeg.data(), jpeg.size(), "rgb.jpg");
  const at::Tensor png_reference = decode_image(png.data(), png.size(), "rgba.png");
  std::atomic<int> mismatches{0}, missed_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          decode_image(cut.data(), cut.size(), "cut.jpg");
          ++missed_errors;
        } catch (const FileError&) {
        }
        if (!at::equal(decode_image(jpeg.data(), jpeg.size(), "rgb.jpg"), jpeg_reference)) ++mismatches;
        if (!at::equal(decode_image(png.data(), png.size(), "rgba.png"), png_reference)) ++mismatches;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(missed_errors.load(), 0);
}

}  // namespace
}  // namespace ood::io
