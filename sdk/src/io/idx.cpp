#include "ood/io/idx.hpp"

#include <ATen/ATen.h>
#include <zlib.h>

#include <fstream>

#include "ood/error.hpp"

namespace ood::io {

namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& in, const std::string& name) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (checked CRC).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw FileError(name + ": cannot initialise zlib");
  std::vector<std::uint8_t> out;
  out.resize(std::max<std::size_t>(in.size() * 4, 1 << 16));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (zs.total_out == out.size()) out.resize(out.size() * 2);
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    status = inflate(&zs, Z_NO_FLUSH);
    if (status == Z_STREAM_END) break;
    if (status == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      throw FileError(name + ": truncated gzip stream");
    }
    if (status != Z_OK && status != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(status);
      inflateEnd(&zs);
      throw FileError(name + ": corrupt gzip stream (" + msg + ")");
    }
  }
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

}  // namespace

std::vector<std::uint8_t> read_maybe_gzipped(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) throw FileError(file.string() + ": no such file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FileError(file.string() + ": cannot open");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, file.string());
  return bytes;
}

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
    count *= s;
    if (count > (std::uint64_t{1} << 40)) throw FileError(name + ": IDX data too large");
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
  return parse_idx(read_maybe_gzipped(file), file.string());
}

}  // namespace ood::io
