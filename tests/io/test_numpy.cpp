// The .npy/.npz reader: files written by NumPy 1.24 (tests/fixtures/io, made by
// generate.py there; the values below repeat its VALUES), and hand-made headers for
// everything NumPy would not write: malformed dicts, lying sizes, truncations.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "ood/error.hpp"
#include "ood/io/numpy.hpp"
#include "test_support.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

// A bool tensor (at::tensor of bools is not implemented in LibTorch 1.13).
at::Tensor bools(std::initializer_list<int> values) { return at::tensor(std::vector<int>(values)).to(at::kBool); }

std::vector<std::uint8_t> file_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Runs `action`, which must throw ood::FileError whose message has every one of `parts`.
void expect_file_error(const std::function<void()>& action, std::initializer_list<std::string> parts) {
  try {
    action();
  } catch (const FileError& e) {
    const std::string message = e.what();
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ood::FileError, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected ood::FileError, nothing was thrown";
}

// A version-1 .npy file with this header dict and data (the header padded as NumPy does).
std::vector<std::uint8_t> npy(const std::string& dict, const std::vector<std::uint8_t>& data = {}, int major = 1) {
  std::string header = dict;
  const std::size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  for (std::size_t b = 0; b < length_bytes; ++b) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * b)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

at::Tensor parse(const std::vector<std::uint8_t>& bytes) { return parse_npy(bytes.data(), bytes.size(), "hand.npy"); }

std::string npy_error(const std::vector<std::uint8_t>& bytes) {
  try {
    parse(bytes);
  } catch (const FileError& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path npy_fixture(const std::string& name) { return test::fixture("io/npy/" + name); }

struct DtypeCase {
  std::string code;
  at::ScalarType type;  // what the tensor holds
  std::vector<double> values;
};

// generate.py's VALUES with the tensor type each dtype becomes. Integers up to 2^63-1
// are exact in the int64 comparison below (they are given as doubles only here, where
// every listed value but 2^63-1 is exactly representable; that one is checked apart).
std::vector<DtypeCase> dtype_cases() {
  return {
      {"b1", at::kBool, {1, 0, 1, 0, 0, 1}},
      {"i1", at::kChar, {0, 1, -2, 100, -100, 127}},
      {"i2", at::kShort, {0, 1, -2, 1000, -1000, 32767}},
      {"i4", at::kInt, {0, 1, -2, 100000, -100000, 2147483647}},
      {"i8", at::kLong, {0, 1, -2, 1e12, -1e12, 0}},
      {"u1", at::kByte, {0, 1, 2, 100, 200, 255}},
      {"u2", at::kInt, {0, 1, 2, 1000, 40000, 65535}},
      {"u4", at::kLong, {0, 1, 2, 100000, 3000000000.0, 4294967295.0}},
      {"u8", at::kLong, {0, 1, 2, 1e12, 1099511627776.0, 0}},
      {"f2", at::kHalf, {0, 1.5, -2.25, 1000, -0.5, 65504}},
      {"f4", at::kFloat, {0, 1.5, -2.25, 1e10, -0.5, 3.0e38}},
      {"f8", at::kDouble, {0, 1.5, -2.25, 1e100, -0.5, 1e-300}},
  };
}

void expect_dtype_case(const at::Tensor& t, const DtypeCase& c, const std::string& file) {
  SCOPED_TRACE(file);
  ASSERT_EQ(t.scalar_type(), c.type);
  ASSERT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(t.is_contiguous());
  for (int i = 0; i < 6; ++i) {
    const at::Tensor element = t[i / 3][i % 3];
    if (c.code == "i8" || c.code == "u8") {
      const std::int64_t expected = i == 5 ? INT64_MAX : static_cast<std::int64_t>(c.values[i]);
      EXPECT_EQ(element.item<std::int64_t>(), expected) << "element " << i;
    } else if (c.type == at::kFloat) {
      EXPECT_EQ(element.item<float>(), static_cast<float>(c.values[i])) << "element " << i;
    } else {
      EXPECT_EQ(element.item<double>(), c.values[i]) << "element " << i;
    }
  }
}

TEST(NpyFixtures, EveryDtypeLittleEndian) {
  for (const auto& c : dtype_cases()) expect_dtype_case(read_npy(npy_fixture("le_" + c.code + ".npy")), c, "le_" + c.code);
}

TEST(NpyFixtures, EveryDtypeBigEndian) {
  for (const auto& c : dtype_cases()) {
    if (c.code == "b1" || c.code == "i1" || c.code == "u1") continue;  // no byte order
    expect_dtype_case(read_npy(npy_fixture("be_" + c.code + ".npy")), c, "be_" + c.code);
  }
}

TEST(NpyFixtures, Uint64AboveInt64MaxIsRefused) {
  const fs::path file = npy_fixture("u8_too_large.npy");
  expect_file_error([&] { read_npy(file); }, {file.string(), "18446744073709551615", "element 1", "int64"});
}

TEST(NpyFixtures, FortranOrderBecomesCContiguous) {
  for (const char* name : {"fortran_i4.npy", "fortran_be_f8.npy"}) {
    SCOPED_TRACE(name);
    const at::Tensor t = read_npy(npy_fixture(name));
    ASSERT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 3, 4}));
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(t.scalar_type(), std::string(name) == "fortran_i4.npy" ? at::kInt : at::kDouble);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) EXPECT_EQ(t[i][j][k].item<double>(), 100 * i + 10 * j + k);
  }
}

TEST(NpyFixtures, FormatVersions2And3) {
  for (const char* name : {"v2.npy", "v3.npy"}) {
    const at::Tensor t = read_npy(npy_fixture(name));
    EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat).reshape({2, 3}))) << name;
  }
}

TEST(NpyFixtures, ScalarAndEmptyArrays) {
  const at::Tensor scalar = read_npy(npy_fixture("scalar_f8.npy"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 3.5);
  const at::Tensor empty = read_npy(npy_fixture("empty_f4.npy"));
  EXPECT_EQ(empty.sizes(), (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(empty.scalar_type(), at::kFloat);
}

TEST(NpyFixtures, RefusedDtypesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"object.npy", "object array"}, {"structured.npy", "structured"}, {"unicode.npy", "'<U2'"}, {"complex.npy", "complex"}};
  for (const auto& [name, why] : cases) {
    const fs::path file = npy_fixture(name);
    expect_file_error([&] { read_npy(file); }, {file.string(), why});
  }
}

TEST(NpyFixtures, EveryTruncationIsAFileError) {
  const std::vector<std::uint8_t> whole = file_bytes(npy_fixture("fortran_be_f8.npy"));
  for (std::size_t n = 0; n < whole.size(); ++n) {
    const std::vector<std::uint8_t> prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(parse_npy(prefix.data(), prefix.size(), "cut.npy"), FileError) << n << " bytes";
  }
}

TEST(NpyFile, MissingFileIsNamed) {
  const fs::path missing = test::temp_dir("npy-missing") / "nothing.npy";
  expect_file_error([&] { read_npy(missing); }, {missing.string(), "no such file"});
}

TEST(NpyHeader, HandWrittenVariantsNumPyAccepts) {
  // Keys in another order, double quotes, Python 2 long dims, no trailing comma.
  const std::vector<std::uint8_t> data = {1, 0, 2, 0};
  const at::Tensor t = parse(npy("{\"shape\": (2L, 1L), 'fortran_order': False, 'descr': '<i2'}", data));
  EXPECT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(t[1][0].item<int>(), 2);
  // '=' is this machine's order; a one-element tuple.
  const at::Tensor native = parse(npy("{'descr': '=u1', 'fortran_order': True, 'shape': (3,), }", {7, 8, 9}));
  EXPECT_EQ(native[2].item<int>(), 9);
  // Version 2 from the hand builder.
  EXPECT_EQ(parse(npy("{'descr': '|i1', 'fortran_order': False, 'shape': (1,), }", {0xFF}, 2))[0].item<int>(), -1);
}

TEST(NpyHeader, DataSizeMustMatchExactly) {
  const std::string f4x4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  EXPECT_NE(npy_error(npy(f4x4, std::vector<std::uint8_t>(12))).find("truncated array data"), std::string::npos);
  EXPECT_NE(npy_error(npy(f4x4, std::vector<std::uint8_t>(12))).find("needs 16 bytes, there are 12"), std::string::npos);
  EXPECT_NE(npy_error(npy(f4x4, std::vector<std::uint8_t>(17))).find("longer than declared"), std::string::npos);
}

TEST(NpyHeader, HugeDeclaredShapesFailBeforeAllocating) {
  // 2^40 x 2^40 elements: the product overflows 64 bits.
  EXPECT_NE(npy_error(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", {1, 2}))
                .find("too large"),
            std::string::npos);
  // 2^62 doubles: the byte count overflows.
  EXPECT_NE(npy_error(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }")).find("too large"),
            std::string::npos);
  // A terabyte promised, three bytes given: refused by size, nothing allocated.
  EXPECT_NE(npy_error(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }", {1, 2, 3}))
                .find("needs 1000000000000 bytes, there are 3"),
            std::string::npos);
  // A dimension beyond int64.
  EXPECT_NE(npy_error(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }"))
                .find("does not fit 64 bits"),
            std::string::npos);
}

TEST(NpyHeader, LyingHeaderLengths) {
  std::vector<std::uint8_t> v1 = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xFF, 0xFF, '{', '}'};
  EXPECT_NE(npy_error(v1).find("truncated .npy header"), std::string::npos);
  std::vector<std::uint8_t> v2 = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, '{', '}'};
  EXPECT_NE(npy_error(v2).find("implausible .npy header length"), std::string::npos);
  EXPECT_NE(npy_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0}).find("not a .npy file"), std::string::npos);
  EXPECT_NE(npy_error({0x93, 'N', 'U', 'M', 'P', 'Y', 4, 0, 0, 0, 0}).find("format version 4.0"), std::string::npos);
}

TEST(NpyHeader, MalformedDictsAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False}", "missing 'shape'"},
      {"{'descr': '<f4', 'shape': (1,), }", "missing 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (1,), }", "missing 'descr'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "'descr' appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "must be a tuple"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "invalid .npy header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "unexpected text after"},
      {"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}", "structured dtypes"},
      {"{'descr': 'f4', 'fortran_order': False, 'shape': (1,)}", "no byte order"},
      {"{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", "no byte order but 4-byte"},
      {"{'descr': '<f16', 'fortran_order': False, 'shape': (1,)}", "unsupported dtype '<f16'"},
      {"{'descr': '<i3', 'fortran_order': False, 'shape': (1,)}", "unsupported dtype '<i3'"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", "object array"},
      {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (1,)}", "unsupported dtype"},
      {"['descr', '<f4']", "expected '{'"},
  };
  for (const auto& [dict, why] : cases) {
    const std::string message = npy_error(npy(dict, std::vector<std::uint8_t>(4)));
    EXPECT_NE(message.find(why), std::string::npos) << dict << " -> " << message;
    EXPECT_EQ(message.rfind("hand.npy: ", 0), 0u) << message;
  }
}

TEST(NpyHeader, BoolBytesOtherThanZeroOrOne) {
  const std::string dict = "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_TRUE(at::equal(parse(npy(dict, {1, 0, 1})), bools({1, 0, 1})));
  EXPECT_NE(npy_error(npy(dict, {1, 2, 1})).find("bool array holds the byte 2 at element 1"), std::string::npos);
}

TEST(NpyHeader, FortranOrderOfHandMadeMatrix) {
  // Column-major 2x3 matrix [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
  const at::Tensor t = parse(npy("{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }",
                                 {0, 1, 0, 4, 0, 2, 0, 5, 0, 3, 0, 6}));
  EXPECT_TRUE(at::equal(t, at::tensor({1, 2, 3, 4, 5, 6}, at::kShort).reshape({2, 3})));
}

// ---- .npz ---------------------------------------------------------------------------

void expect_npz_arrays(const fs::path& file) {
  SCOPED_TRACE(file.string());
  EXPECT_EQ(npz_keys(file), (std::vector<std::string>{"x", "labels", "flags"}));
  EXPECT_TRUE(at::equal(read_npz(file, "x"), at::arange(12, at::kFloat).reshape({3, 4})));
  EXPECT_TRUE(at::equal(read_npz(file, "labels"), at::tensor({1, 0, 2}, at::kLong)));
  EXPECT_TRUE(at::equal(read_npz(file, "flags"), bools({1, 0, 1})));
  // The member's own name works too.
  EXPECT_TRUE(at::equal(read_npz(file, "labels.npy"), at::tensor({1, 0, 2}, at::kLong)));
}

TEST(NpzFixtures, StoredMembers) { expect_npz_arrays(test::fixture("io/npz/stored.npz")); }

TEST(NpzFixtures, DeflatedMembers) { expect_npz_arrays(test::fixture("io/npz/deflated.npz")); }

TEST(NpzFixtures, MissingKeyNamesFileAndKeys) {
  const fs::path file = test::fixture("io/npz/deflated.npz");
  expect_file_error([&] { read_npz(file, "y"); }, {file.string(), "no array 'y'", "x, labels, flags"});
}

TEST(NpzFixtures, MemberThatIsNotNpy) {
  const fs::path file = test::fixture("io/npz/with_text.npz");
  EXPECT_EQ(npz_keys(file), (std::vector<std::string>{"x", "readme.txt"}));
  EXPECT_TRUE(at::equal(read_npz(file, "x"), at::tensor({0, 1, 2}, at::kShort)));
  expect_file_error([&] { read_npz(file, "readme.txt"); }, {file.string(), "member 'readme.txt'", "not a .npy file"});
}

TEST(NpzFiles, NotAZipOrMissing) {
  const fs::path dir = test::temp_dir("npz-bad");
  write_bytes(dir / "text.npz", {'h', 'e', 'l', 'l', 'o', '\n'});
  expect_file_error([&] { npz_keys(dir / "text.npz"); }, {(dir / "text.npz").string()});
  expect_file_error([&] { read_npz(dir / "text.npz", "x"); }, {(dir / "text.npz").string()});
  expect_file_error([&] { read_npz(dir / "absent.npz", "x"); }, {(dir / "absent.npz").string(), "no such file"});
}

TEST(NpzFiles, TruncatedAndCorruptArchives) {
  const fs::path dir = test::temp_dir("npz-corrupt");
  for (const char* name : {"stored.npz", "deflated.npz"}) {
    const std::vector<std::uint8_t> whole = file_bytes(test::fixture(std::string("io/npz/") + name));
    // Cut inside the members: either the listing or the member read fails, as FileError.
    // (A cut only into the central directory may still read: the members are intact.)
    for (std::size_t n : {std::size_t{0}, std::size_t{30}, whole.size() / 3, whole.size() / 2}) {
      const fs::path cut = dir / ("cut-" + std::to_string(n) + "-" + name);
      write_bytes(cut, std::vector<std::uint8_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)));
      EXPECT_THROW(read_npz(cut, "flags"), FileError) << name << " cut at " << n;
    }
  }
  // A flipped byte inside the first member's array data: the zip CRC no longer matches.
  std::vector<std::uint8_t> stored = file_bytes(test::fixture("io/npz/stored.npz"));
  const std::uint8_t magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  const auto npy_at = std::search(stored.begin(), stored.end(), std::begin(magic), std::end(magic));
  ASSERT_NE(npy_at, stored.end());
  *(npy_at + 128 + 8) ^= 0x40;  // past the 128-byte .npy header, into x's floats
  write_bytes(dir / "flipped.npz", stored);
  expect_file_error([&] { read_npz(dir / "flipped.npz", "x"); }, {(dir / "flipped.npz").string(), "member 'x.npy'"});
}

void put16(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int b = 0; b < 2; ++b) out.push_back(static_cast<std::uint8_t>(v >> (8 * b)));
}
void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(v >> (8 * b)));
}

// A one-member zip whose headers declare `declared_size` uncompressed bytes for a
// deflated stream of `deflated` bytes.
std::vector<std::uint8_t> zip_with_declared_size(const std::vector<std::uint8_t>& deflated, std::uint32_t declared_size,
                                                 std::uint32_t crc) {
  const std::string name = "x.npy";
  std::vector<std::uint8_t> out;
  const auto entry_fields = [&](std::vector<std::uint8_t>& o) {
    put16(o, 20);  // version needed
    put16(o, 0);   // flags
    put16(o, 8);   // deflate
    put16(o, 0);   // time
    put16(o, 0x21);  // date
    put32(o, crc);
    put32(o, static_cast<std::uint32_t>(deflated.size()));
    put32(o, declared_size);
    put16(o, static_cast<std::uint32_t>(name.size()));
    put16(o, 0);  // extra length
  };
  put32(out, 0x04034b50);
  entry_fields(out);
  out.insert(out.end(), name.begin(), name.end());
  out.insert(out.end(), deflated.begin(), deflated.end());
  const std::uint32_t directory_at = static_cast<std::uint32_t>(out.size());
  put32(out, 0x02014b50);
  put16(out, 20);  // version made by
  entry_fields(out);
  put16(out, 0);  // comment length
  put16(out, 0);  // disk
  put16(out, 0);  // internal attributes
  put32(out, 0);  // external attributes
  put32(out, 0);  // local header offset
  out.insert(out.end(), name.begin(), name.end());
  const std::uint32_t directory_size = static_cast<std::uint32_t>(out.size()) - directory_at;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, 1);
  put16(out, 1);
  put32(out, directory_size);
  put32(out, directory_at);
  put16(out, 0);
  return out;
}

std::vector<std::uint8_t> raw_deflate(const std::vector<std::uint8_t>& data) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::vector<std::uint8_t> out(deflateBound(&zs, static_cast<uLong>(data.size())));
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(NpzFiles, HandMadeZipIsReadAndLyingSizesAreRefused) {
  const fs::path dir = test::temp_dir("npz-sizes");
  const std::vector<std::uint8_t> member = npy("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", {5, 0, 6, 0});
  const std::uint32_t crc = static_cast<std::uint32_t>(crc32(0, member.data(), static_cast<uInt>(member.size())));
  const std::vector<std::uint8_t> deflated = raw_deflate(member);
  // The builder itself is right: the honest archive reads.
  write_bytes(dir / "honest.npz", zip_with_declared_size(deflated, static_cast<std::uint32_t>(member.size()), crc));
  EXPECT_TRUE(at::equal(read_npz(dir / "honest.npz", "x"), at::tensor({5, 6}, at::kShort)));
  // 4 GB declared for a few hundred bytes: refused before reading.
  write_bytes(dir / "huge.npz", zip_with_declared_size(deflated, 0xFFFFFFF0u, crc));
  expect_file_error([&] { read_npz(dir / "huge.npz", "x"); },
                    {(dir / "huge.npz").string(), "member 'x.npy' declares 4294967280 bytes"});
  // Fewer bytes declared than the stream inflates to.
  write_bytes(dir / "short.npz", zip_with_declared_size(deflated, 16, crc));
  EXPECT_THROW(read_npz(dir / "short.npz", "x"), FileError);
}

}  // namespace
}  // namespace ood::io
