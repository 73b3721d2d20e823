#pragma once
// NumPy's .npy (format versions 1.0, 2.0, 3.0) and .npz (a zip of .npy files, stored or
// deflated) files, read by a small strict parser: the header is a Python dict literal
// with exactly 'descr', 'fortran_order' and 'shape'; object arrays ('O') are refused
// (they are pickles). Supported dtypes: bool, int8/16/32/64, uint8, float16/32/64,
// little or big endian. LibTorch has no uint16/32/64, so those are widened to a signed
// type that holds every value: uint16 -> int32, uint32 -> int64, and uint64 -> int64
// only when every value is below 2^63 (else the file is refused).
#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood::io {

/// Reads a .npy file into a contiguous tensor of its shape (C order, whatever the
/// file's order). Throws ood::FileError naming the file.
OOD_SDK_API at::Tensor read_npy(const std::filesystem::path& file);

/// Parses .npy bytes; `name` is used in messages.
OOD_SDK_API at::Tensor parse_npy(const std::uint8_t* data, std::size_t size, const std::string& name);

/// The array `key` ("x" reads member "x.npy") of a .npz file. Throws ood::FileError
/// naming the file and the keys it has when `key` is missing.
OOD_SDK_API at::Tensor read_npz(const std::filesystem::path& file, const std::string& key);

/// The keys of a .npz file, in archive order.
OOD_SDK_API std::vector<std::string> npz_keys(const std::filesystem::path& file);

/// The tensor for raw NumPy array data: `descr` is a dtype string with its byte order
/// ("<f4", "|u1", ">i8"), `data` holds exactly the product of `shape` elements, in
/// Fortran (column-major) order when `fortran_order`. Same dtype rules as read_npy.
/// Added beside read_npy because pickled NumPy arrays (python_pickle.hpp) carry the
/// same dtype strings and layouts, so both readers share one conversion.
OOD_SDK_API at::Tensor numpy_array_from_bytes(const std::string& descr, const std::vector<std::int64_t>& shape,
                                              bool fortran_order, const std::uint8_t* data, std::size_t size,
                                              const std::string& name);

}  // namespace ood::io
