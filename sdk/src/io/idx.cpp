#include "ood/io/idx.hpp"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <fstream>
#include <optional>
#include <system_error>

#include "ood/error.hpp"

namespace ood::io {

namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// Deflate cannot expand data by more than about 1032:1; a stream claiming more is
// corrupt, whatever it says.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// The bytes an IDX file with this (possibly partial) header may have in total, or
// nothing while the header is incomplete or not IDX-like.
std::optional<std::uint64_t> idx_total_size(const std::vector<std::uint8_t>& head, std::size_t have) {
  if (have < 4 || head[0] != 0 || head[1] != 0) return std::nullopt;
  std::uint64_t element = 0;
  switch (head[2]) {
    case 0x08: case 0x09: element = 1; break;
    case 0x0B: element = 2; break;
    case 0x0C: case 0x0D: element = 4; break;
    case 0x0E: element = 8; break;
    default: return std::nullopt;
  }
  const std::size_t ndims = head[3];
  if (ndims == 0 || ndims > 8 || have < 4 + 4 * ndims) return std::nullopt;
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint64_t s = read_be32(head.data() + 4 + 4 * d);
    if (s != 0 && count > (std::uint64_t{1} << 40) / s) return UINT64_MAX;  // more than parse_idx accepts
    count *= s;
  }
  return 4 + 4 * ndims + count * element;
}

// Inflates a gzip stream without ever holding more than `limit(output so far)` bytes:
// the caller's bound (the IDX header's promise) and the deflate ratio.
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& in, const std::string& name, bool idx) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (checked CRC).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw FileError(name + ": cannot initialise zlib");
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};
  const std::uint64_t ratio_cap = static_cast<std::uint64_t>(in.size()) * kMaxDeflateRatio + 1024;
  std::uint64_t cap = ratio_cap;
  bool header_known = false;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(std::min<std::uint64_t>(cap, 1 << 16)));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  int status = Z_OK;
  // As soon as the IDX header is out, it bounds the rest.
  const auto check_header = [&] {
    if (!idx || header_known) return;
    if (auto total = idx_total_size(out, zs.total_out)) {
      header_known = true;
      cap = std::min(cap, *total);
      if (*total > ratio_cap)
        throw FileError(name + ": the IDX header promises " +
                        (*total == UINT64_MAX ? std::string("more than 2^40 elements") : std::to_string(*total) + " bytes") +
                        ", more than a " + std::to_string(in.size()) + "-byte gzip stream can hold");
    }
  };
  while (status != Z_STREAM_END) {
    check_header();
    if (zs.total_out == out.size()) {
      if (out.size() >= cap)
        throw FileError(name + ": the gzip stream inflates beyond " + std::to_string(cap) + " bytes, " +
                        (header_known ? "the size its IDX header promises" : "more than its size can justify"));
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, out.size() * 2)));
    }
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - zs.total_out, 1u << 30));
    status = inflate(&zs, Z_NO_FLUSH);
    if (status == Z_STREAM_END) break;
    if (status == Z_BUF_ERROR && zs.avail_in == 0) throw FileError(name + ": truncated gzip stream");
    if (status != Z_OK && status != Z_BUF_ERROR)
      throw FileError(name + ": corrupt gzip stream (" + (zs.msg ? std::string(zs.msg) : "error " + std::to_string(status)) + ")");
  }
  check_header();
  out.resize(zs.total_out);
  return out;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& file, bool idx) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (!std::filesystem::exists(status)) throw FileError(file.string() + ": no such file");
  if (!std::filesystem::is_regular_file(status)) throw FileError(file.string() + ": not a regular file");
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw FileError(file.string() + ": cannot open: " +
                    std::error_code(errno ? errno : EIO, std::generic_category()).message());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw FileError(file.string() + ": cannot read");
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, file.string(), idx);
  return bytes;
}

}  // namespace

std::vector<std::uint8_t> read_maybe_gzipped(const std::filesystem::path& file) { return read_file(file, false); }

at::Tensor parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 4) throw FileError(name + ": not an IDX file (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0)
    throw FileError(name + ": not an IDX file (bad magic number)");
  at::ScalarType type;
  std::size_t element = 0;
  switch (bytes[2]) {
    case 0x08: type = at::kByte; element = 1; break;
    case 0x09: type = at::kChar; element = 1; break;
    case 0x0B: type = at::kShort; element = 2; break;
    case 0x0C: type = at::kInt; element = 4; break;
    case 0x0D: type = at::kFloat; element = 4; break;
    case 0x0E: type = at::kDouble; element = 8; break;
    default:
      throw FileError(name + ": unknown IDX data type 0x" +
                      std::string(1, "0123456789abcdef"[bytes[2] >> 4]) +
                      std::string(1, "0123456789abcdef"[bytes[2] & 15]));
  }
  const std::size_t ndims = bytes[3];
  if (ndims == 0 || ndims > 8) throw FileError(name + ": IDX file with " + std::to_string(ndims) + " dimensions");
  if (bytes.size() < 4 + 4 * ndims) throw FileError(name + ": truncated IDX header");
  std::vector<std::int64_t> sizes;
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t s = read_be32(bytes.data() + 4 + 4 * d);
    if (s > (1u << 31)) throw FileError(name + ": implausible IDX dimension " + std::to_string(s));
    sizes.push_back(s);
    // Checked before multiplying: count * s could wrap around to a small number.
    if (s != 0 && count > (std::uint64_t{1} << 40) / s) throw FileError(name + ": IDX data too large");
    count *= s;
  }
  const std::size_t offset = 4 + 4 * ndims;
  const std::uint64_t expected = count * element;
  const std::uint64_t available = bytes.size() - offset;
  if (available < expected)
    throw FileError(name + ": truncated IDX data: header promises " + std::to_string(expected) +
                    " bytes, file has " + std::to_string(available));
  if (available > expected)
    throw FileError(name + ": IDX file has " + std::to_string(available - expected) +
                    " bytes after the data (corrupt or not an IDX file)");
  at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(type));
  auto* dst = static_cast<std::uint8_t*>(out.data_ptr());
  const std::uint8_t* src = bytes.data() + offset;
  if (expected == 0) return out;  // a zero dimension: no storage (data_ptr may be null)
  if (element == 1) {
    std::memcpy(dst, src, expected);
  } else {
    // IDX is big-endian; swap each element.
    for (std::uint64_t i = 0; i < count; ++i)
      for (std::size_t b = 0; b < element; ++b) dst[i * element + b] = src[i * element + element - 1 - b];
  }
  return out;
}

at::Tensor read_idx(const std::filesystem::path& file) {
  return parse_idx(read_file(file, true), file.string());
}

}  // namespace ood::io
