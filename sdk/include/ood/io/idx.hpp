#pragma once
// The IDX format of (Fashion-)MNIST: a big-endian magic number `0 0 type ndims`, ndims
// big-endian int32 sizes, then the data in row-major order. Files may be
// gzip-compressed (as downloaded); compression is detected from the content.
#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood::io {

/// Reads an IDX file (plain or gzip) into a tensor of the stored type (uint8, int8,
/// int16, int32, float32, float64) and shape. Throws ood::FileError naming the file
/// for a missing file, bad magic, unknown type, truncated or oversized data, or a
/// corrupt gzip stream.
OOD_SDK_API at::Tensor read_idx(const std::filesystem::path& file);

/// Parses IDX bytes (already decompressed); `name` is used in messages.
OOD_SDK_API at::Tensor parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& name);

/// The whole content of a file, gunzipped when it starts with the gzip magic.
/// Throws ood::FileError naming the file.
OOD_SDK_API std::vector<std::uint8_t> read_maybe_gzipped(const std::filesystem::path& file);

}  // namespace ood::io
