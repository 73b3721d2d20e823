#pragma once
// Numeric arrays from MATLAB .mat files (level 5 with or without compression, and 7.3
// when libmatio was built with HDF5), read with libmatio. Used for SVHN's *_32x32.mat.
#include <ATen/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood::io {

/// The numeric array variable `name`, in MATLAB's dimension order and values (the
/// tensor is [d0, d1, ...] with MATLAB's column-major layout converted, so t[i][j] is
/// A(i+1, j+1)). Class uint8/int8/16/32/64/uint16/32/single/double/logical. LibTorch
/// has no uint16/32/64: uint16 becomes int32, uint32 and uint64 int64 (uint64 only when
/// every value is below 2^63). Throws ood::FileError naming the file and the variable
/// (and the variables it has when it is missing), also for a truncated MAT 5 file.
OOD_SDK_API at::Tensor read_mat_variable(const std::filesystem::path& file, const std::string& name);

}  // namespace ood::io
