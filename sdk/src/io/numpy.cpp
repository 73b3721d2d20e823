// NumPy .npy and .npz files. The .npy header is a Python dict literal; it is parsed by
// a small grammar that accepts only what NumPy writes (string, bool and tuple-of-int
// values under the three known keys), never by evaluating anything. Every size in a
// header is checked against the bytes actually present before memory is allocated.
// .npz members are read with libarchive directly (not through archive.hpp) so that this
// reader has no dependency on the extraction code.
#include "ood/io/numpy.hpp"

#include <ATen/ATen.h>
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

#include "ood/error.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& name, const std::string& what) { throw FileError(name + ": " + what); }

// Shapes with more dimensions than this are refused (NumPy itself allows 32, 64 in 2.x).
constexpr std::size_t kMaxDims = 64;
// NumPy refuses headers above 10000 bytes by default; a generous cap that still keeps a
// corrupt 4-byte length from being taken seriously.
constexpr std::uint64_t kMaxHeaderBytes = 1 << 20;
// Deflate cannot expand data by more than about 1032:1: a zip member that claims or
// produces more than this multiple of the archive's size is corrupt.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

// ---- dtypes --------------------------------------------------------------------------

// How one element is stored in the file and what it becomes in the tensor.
struct ElementFormat {
  char kind = 0;              // 'b', 'i', 'u', 'f'
  std::size_t itemsize = 0;   // bytes per element in the file
  bool swap_bytes = false;    // the file's byte order differs from this machine's
  at::ScalarType tensor_type = at::kByte;
};

ElementFormat parse_descr(const std::string& descr, const std::string& name) {
  const std::string quoted = "'" + descr + "'";
  if (descr.size() < 2) fail(name, "invalid dtype " + quoted);
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=')
    fail(name, "invalid dtype " + quoted + " (no byte order character <, >, | or =)");
  const char kind = descr[1];
  if (kind == 'O')
    fail(name, "dtype " + quoted + " is an object array (pickled Python objects); only numeric arrays are supported");
  const std::string digits = descr.substr(2);
  std::size_t itemsize = 0;
  if (digits.empty() || digits.size() > 2 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    fail(name, "unsupported dtype " + quoted);
  itemsize = static_cast<std::size_t>(std::stoi(digits));

  ElementFormat f;
  f.kind = kind;
  f.itemsize = itemsize;
  bool known = false;
  switch (kind) {
    case 'b':
      known = itemsize == 1;
      f.tensor_type = at::kBool;
      break;
    case 'i':
      known = itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8;
      f.tensor_type = itemsize == 1 ? at::kChar : itemsize == 2 ? at::kShort : itemsize == 4 ? at::kInt : at::kLong;
      break;
    case 'u':
      // LibTorch has only uint8 among unsigned types: wider ones are widened to a
      // signed type that holds them (uint64 is checked value by value).
      known = itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8;
      f.tensor_type = itemsize == 1 ? at::kByte : itemsize == 2 ? at::kInt : at::kLong;
      break;
    case 'f':
      known = itemsize == 2 || itemsize == 4 || itemsize == 8;
      f.tensor_type = itemsize == 2 ? at::kHalf : itemsize == 4 ? at::kFloat : at::kDouble;
      break;
    default:
      break;
  }
  if (!known) {
    std::string what = "unsupported dtype " + quoted;
    if (kind == 'c') what += " (complex)";
    else if (kind == 'S' || kind == 'a') what += " (byte strings)";
    else if (kind == 'U') what += " (unicode strings)";
    else if (kind == 'V') what += " (raw or structured records)";
    else if (kind == 'M' || kind == 'm') what += " (dates and times)";
    fail(name, what + "; supported: bool, int8-64, uint8-64, float16-64");
  }
  if (order == '|' && itemsize > 1) fail(name, "dtype " + quoted + " has no byte order but " + digits + "-byte elements");
  const bool file_little = order == '<' || (order == '=' && std::endian::native == std::endian::little);
  f.swap_bytes = itemsize > 1 && file_little != (std::endian::native == std::endian::little);
  return f;
}

// Reads one unsigned element of `size` bytes, in the file's byte order.
std::uint64_t load_unsigned(const std::uint8_t* p, std::size_t size, bool swap_bytes) {
  std::uint8_t buffer[8];
  for (std::size_t b = 0; b < size; ++b) buffer[b] = swap_bytes ? p[size - 1 - b] : p[b];
  switch (size) {
    case 2: { std::uint16_t v; std::memcpy(&v, buffer, 2); return v; }
    case 4: { std::uint32_t v; std::memcpy(&v, buffer, 4); return v; }
    default: { std::uint64_t v; std::memcpy(&v, buffer, 8); return v; }
  }
}

// ---- the .npy header -----------------------------------------------------------------

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

// A recursive-descent reader of the header's dict literal. Only the forms NumPy writes
// (in Python 2 and 3) are accepted: quoted strings without escapes, True/False, and
// tuples of non-negative integers (Python 2 may append 'L').
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader header;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') { ++pos_; break; }
      const std::string key = string_literal("a key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (have_descr) error("'descr' appears twice");
        if (peek() == '[') error("structured dtypes (a list as 'descr') are not supported");
        header.descr = string_literal("the 'descr' value");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) error("'fortran_order' appears twice");
        header.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) error("'shape' appears twice");
        header.shape = shape();
        have_shape = true;
      } else {
        error("unexpected key '" + key + "' (a .npy header has exactly 'descr', 'fortran_order' and 'shape')");
      }
      skip_space();
      if (peek() == ',') { ++pos_; continue; }
      expect('}');
      break;
    }
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the header dict");
    if (!have_descr) error("missing 'descr'");
    if (!have_order) error("missing 'fortran_order'");
    if (!have_shape) error("missing 'shape'");
    return header;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail(name_, "invalid .npy header: " + what + " (at header byte " + std::to_string(pos_) + ")");
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') error(std::string("expected a quoted string as ") + what);
    const std::size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') error("unsupported character in a string");
      ++pos_;
    }
    if (pos_ == text_.size()) error("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }
  bool boolean() {
    if (text_.substr(pos_, 4) == "True") { pos_ += 4; return true; }
    if (text_.substr(pos_, 5) == "False") { pos_ += 5; return false; }
    error("'fortran_order' must be True or False");
  }
  std::int64_t dimension() {
    if (peek() == '-') error("negative dimension in 'shape'");
    if (peek() < '0' || peek() > '9') error("expected an integer in 'shape'");
    std::uint64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const std::uint64_t digit = static_cast<std::uint64_t>(peek() - '0');
      if (value > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10)
        error("dimension in 'shape' does not fit 64 bits");
      value = value * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;  // Python 2's long literal
    return static_cast<std::int64_t>(value);
  }
  std::vector<std::int64_t> shape() {
    expect('(');
    std::vector<std::int64_t> dims;
    skip_space();
    if (peek() == ')') { ++pos_; return dims; }
    while (true) {
      skip_space();
      dims.push_back(dimension());
      if (dims.size() > kMaxDims) error("more than " + std::to_string(kMaxDims) + " dimensions");
      skip_space();
      if (peek() == ',') {
        ++pos_;
        skip_space();
        if (peek() == ')') { ++pos_; break; }
        continue;
      }
      if (peek() == ')') {
        // Python writes a one-element tuple as "(n,)"; "(n)" is an int, not a tuple.
        if (dims.size() == 1) error("'shape' must be a tuple, e.g. (3,)");
        ++pos_;
        break;
      }
      error("expected ',' or ')' in 'shape'");
    }
    return dims;
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// ---- files ---------------------------------------------------------------------------

std::vector<std::uint8_t> read_whole_file(const fs::path& file) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status)) fail(file.string(), "no such file");
  if (!fs::is_regular_file(status)) fail(file.string(), "not a regular file");
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in)
    fail(file.string(), "cannot open: " + std::error_code(errno ? errno : EIO, std::generic_category()).message());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(file.string(), "read error");
  return bytes;
}

// ---- .npz through libarchive ---------------------------------------------------------

using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_read_free)>;

std::string libarchive_message(struct archive* a) {
  const char* message = archive_error_string(a);
  return message ? message : "unknown libarchive error";
}

ArchivePtr open_zip(const fs::path& file) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status)) fail(file.string(), "no such file");
  if (!fs::is_regular_file(status)) fail(file.string(), "not a regular file");
  ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) fail(file.string(), "libarchive could not allocate a reader");
  archive_read_support_format_zip(a.get());
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK)
    fail(file.string(), "not a readable .npz (zip) file: " + libarchive_message(a.get()));
  return a;
}

std::string member_name(struct archive_entry* entry) {
  const char* utf8 = archive_entry_pathname_utf8(entry);
  if (utf8) return utf8;
  const char* raw = archive_entry_pathname(entry);
  return raw ? raw : "";
}

// Calls `visit(name, entry)` for each regular file until it returns true; returns
// whether one did. Corrupt archives throw, naming the last good member.
template <typename Visit>
bool for_each_member(struct archive* a, const fs::path& file, Visit&& visit) {
  std::string previous;
  while (true) {
    struct archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) return false;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      fail(file.string(), "corrupt .npz (zip) file" + (previous.empty() ? std::string() : " after member '" + previous + "'") +
                              ": " + libarchive_message(a));
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    previous = member_name(entry);
    if (visit(previous, entry)) return true;
  }
}

std::string key_of_member(const std::string& member) {
  constexpr std::string_view suffix = ".npy";
  if (member.size() >= suffix.size() && member.compare(member.size() - suffix.size(), suffix.size(), suffix) == 0)
    return member.substr(0, member.size() - suffix.size());
  return member;
}

// The current member's bytes, never more than the archive can hold when inflated nor
// more than the member declares.
std::vector<std::uint8_t> read_member(struct archive* a, struct archive_entry* entry, const fs::path& file,
                                      const std::string& member) {
  std::error_code ec;
  const std::uint64_t archive_size = fs::file_size(file, ec);
  const std::uint64_t cap = ec ? std::numeric_limits<std::uint64_t>::max() / 2 : archive_size * kMaxDeflateRatio + 4096;
  std::optional<std::uint64_t> declared;
  if (archive_entry_size_is_set(entry)) {
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0) fail(file.string(), "member '" + member + "' has a negative size");
    declared = static_cast<std::uint64_t>(size);
    if (*declared > cap)
      fail(file.string(), "member '" + member + "' declares " + std::to_string(*declared) + " bytes, more than a " +
                              std::to_string(archive_size) + "-byte archive can hold");
  }
  std::vector<std::uint8_t> out;
  if (declared) out.reserve(static_cast<std::size_t>(*declared));
  std::uint8_t buffer[1 << 16];
  while (true) {
    const la_ssize_t n = archive_read_data(a, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0)
      fail(file.string(), "cannot read member '" + member + "' (corrupt or truncated): " + libarchive_message(a));
    const std::uint64_t total = out.size() + static_cast<std::uint64_t>(n);
    if (total > cap || (declared && total > *declared))
      fail(file.string(), "member '" + member + "' holds more data than " +
                              (declared ? "it declares (" + std::to_string(*declared) + " bytes)" : std::string("the archive can hold")));
    out.insert(out.end(), buffer, buffer + n);
  }
  if (declared && out.size() != *declared)
    fail(file.string(), "member '" + member + "' is truncated: " + std::to_string(out.size()) + " of " +
                            std::to_string(*declared) + " bytes");
  return out;
}

}  // namespace

at::Tensor numpy_array_from_bytes(const std::string& descr, const std::vector<std::int64_t>& shape, bool fortran_order,
                                  const std::uint8_t* data, std::size_t size, const std::string& name) {
  const ElementFormat format = parse_descr(descr, name);
  if (shape.size() > kMaxDims) fail(name, "array with " + std::to_string(shape.size()) + " dimensions");
  // Element and byte counts in 64 bits, checked at each step: a header's product of
  // dimensions may wrap around to a small number that would match a short file.
  std::uint64_t count = 1;
  bool overflow = false;
  for (const std::int64_t d : shape) {
    if (d < 0) fail(name, "negative dimension in shape " + shape_text(shape));
    overflow = overflow || __builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count);
  }
  std::uint64_t expected = 0;
  overflow = overflow || __builtin_mul_overflow(count, static_cast<std::uint64_t>(format.itemsize), &expected);
  if (overflow || expected > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    fail(name, "shape " + shape_text(shape) + " of dtype '" + descr + "' is too large (the byte count overflows 64 bits); " +
                   "the data has " + std::to_string(size) + " bytes");
  if (expected != size)
    fail(name, std::string(size < expected ? "truncated array data" : "array data longer than declared") + ": shape " +
                   shape_text(shape) + " of dtype '" + descr + "' needs " + std::to_string(expected) + " bytes, there are " +
                   std::to_string(size));

  // A Fortran-ordered array is the C-ordered array of the reversed shape, transposed.
  std::vector<std::int64_t> storage_shape = shape;
  if (fortran_order) std::reverse(storage_shape.begin(), storage_shape.end());
  at::Tensor out = at::empty(storage_shape, at::TensorOptions().dtype(format.tensor_type));
  if (count > 0) {
    auto* dst = static_cast<std::uint8_t*>(out.data_ptr());
    const std::size_t n = static_cast<std::size_t>(count);
    if (format.kind == 'b') {
      for (std::size_t i = 0; i < n; ++i)
        if (data[i] > 1)
          fail(name, "bool array holds the byte " + std::to_string(data[i]) + " at element " + std::to_string(i) +
                         " (only 0 and 1 are valid)");
      std::memcpy(dst, data, n);
    } else if (format.kind == 'u' && format.itemsize > 1) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t v = load_unsigned(data + i * format.itemsize, format.itemsize, format.swap_bytes);
        if (format.itemsize == 2) {
          const std::int32_t widened = static_cast<std::int32_t>(v);
          std::memcpy(dst + i * 4, &widened, 4);
        } else {
          if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(name, "uint64 value " + std::to_string(v) + " at element " + std::to_string(i) +
                           " does not fit int64 (LibTorch has no uint64)");
          const std::int64_t widened = static_cast<std::int64_t>(v);
          std::memcpy(dst + i * 8, &widened, 8);
        }
      }
    } else if (format.swap_bytes) {
      const std::size_t w = format.itemsize;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t b = 0; b < w; ++b) dst[i * w + b] = data[i * w + w - 1 - b];
    } else {
      std::memcpy(dst, data, static_cast<std::size_t>(expected));
    }
  }
  if (fortran_order && shape.size() > 1) {
    std::vector<std::int64_t> reverse_dims(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) reverse_dims[i] = static_cast<std::int64_t>(shape.size() - 1 - i);
    out = out.permute(reverse_dims).contiguous();
  }
  return out;
}

at::Tensor parse_npy(const std::uint8_t* data, std::size_t size, const std::string& name) {
  static constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0)
    fail(name, "not a .npy file (no \\x93NUMPY magic)");
  const unsigned major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0)
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor));
  // Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one (little endian).
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (size < 8 + length_bytes) fail(name, "truncated .npy header");
  std::uint64_t header_length = 0;
  for (std::size_t b = 0; b < length_bytes; ++b) header_length |= std::uint64_t{data[8 + b]} << (8 * b);
  const std::size_t header_start = 8 + length_bytes;
  if (header_length > kMaxHeaderBytes)
    fail(name, "implausible .npy header length " + std::to_string(header_length));
  if (header_length > size - header_start)
    fail(name, "truncated .npy header: it declares " + std::to_string(header_length) + " bytes, the file has " +
                   std::to_string(size - header_start) + " after the preamble");
  // Version 3 allows UTF-8 in the header; the fields read here are ASCII either way.
  const std::string_view text(reinterpret_cast<const char*>(data + header_start), static_cast<std::size_t>(header_length));
  const NpyHeader header = HeaderParser(text, name).parse();
  const std::size_t data_start = header_start + static_cast<std::size_t>(header_length);
  return numpy_array_from_bytes(header.descr, header.shape, header.fortran_order, data + data_start, size - data_start, name);
}

at::Tensor read_npy(const std::filesystem::path& file) {
  const std::vector<std::uint8_t> bytes = read_whole_file(file);
  return parse_npy(bytes.data(), bytes.size(), file.string());
}

std::vector<std::string> npz_keys(const std::filesystem::path& file) {
  ArchivePtr a = open_zip(file);
  std::vector<std::string> keys;
  for_each_member(a.get(), file, [&](const std::string& member, struct archive_entry*) {
    keys.push_back(key_of_member(member));
    return false;
  });
  return keys;
}

at::Tensor read_npz(const std::filesystem::path& file, const std::string& key) {
  ArchivePtr a = open_zip(file);
  const std::string wanted = key + ".npy";
  std::vector<std::string> keys;
  at::Tensor result;
  const bool found = for_each_member(a.get(), file, [&](const std::string& member, struct archive_entry* entry) {
    if (member != wanted && member != key) {
      keys.push_back(key_of_member(member));
      return false;
    }
    const std::vector<std::uint8_t> bytes = read_member(a.get(), entry, file, member);
    result = parse_npy(bytes.data(), bytes.size(), file.string() + ": member '" + member + "'");
    return true;
  });
  if (!found) {
    std::string present;
    for (const auto& k : keys) present += (present.empty() ? "" : ", ") + k;
    fail(file.string(), "no array '" + key + "' (it has " + (keys.empty() ? std::string("no arrays") : present) + ")");
  }
  return result;
}

}  // namespace ood::io
