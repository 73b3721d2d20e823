#pragma once
// NumPy .npy bytes (format 1.0) for miniature dataset files in tests: the header dict
// NumPy writes, padded to a multiple of 64 bytes, then the raw little-endian data.
#include <cstdint>
#include <string>
#include <vector>

namespace ood::test {

/// `descr` as NumPy spells it ("|u1", "<i8", "<f4"); `data` the C-order bytes.
inline std::string npy_bytes(const std::string& descr, const std::vector<std::int64_t>& shape, const std::string& data) {
  std::string dims;
  for (auto d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // (3,) keeps its comma; (3, 4) does not
  else if (shape.empty()) dims.clear();
  else dims.pop_back();
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const std::size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

/// Little-endian bytes of int64 values (labels).
inline std::string int64_bytes(const std::vector<std::int64_t>& values) {
  std::string out;
  for (auto v : values)
    for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  return out;
}

/// Little-endian bytes of float32 values.
inline std::string float32_bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

}  // namespace ood::test
