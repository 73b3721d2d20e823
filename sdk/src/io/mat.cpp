// MATLAB .mat variables through libmatio. MATLAB stores arrays column-major; the
// tensor keeps MATLAB's dimension order and indexing (t[i][j] is A(i+1, j+1)), which
// is the column-major buffer viewed with reversed dimensions, then transposed back.
// The variable's header is read and checked first (class, dimensions, size against the
// file), so that a corrupt header cannot make matio allocate unbounded memory.
#include "ood/io/mat.hpp"

#include <ATen/ATen.h>
#include <matio.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>

#include "ood/error.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

// Deflate (MAT 5 compression, HDF5's usual filter) cannot expand data by more than
// about 1032:1; more elements than that multiple of the file's size is a corrupt header.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

[[noreturn]] void fail(const fs::path& file, const std::string& what) { throw FileError(file.string() + ": " + what); }

struct MatCloser {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct VarFreer {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};
using MatFile = std::unique_ptr<mat_t, MatCloser>;
using MatVar = std::unique_ptr<matvar_t, VarFreer>;

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_EMPTY: return "empty";
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OPAQUE: return "opaque";
  }
  return "unknown";
}

// How the elements of a numeric class are held in matio's buffer (after its
// conversion to the class type) and what they become in the tensor.
struct ClassFormat {
  std::size_t element_size = 0;
  at::ScalarType buffer_type = at::kByte;  // a type of the same width, read as stored
  at::ScalarType tensor_type = at::kByte;
  bool is_unsigned_wide = false;           // uint16/32/64: widened (LibTorch lacks them)
};

std::optional<ClassFormat> class_format(const matvar_t& var) {
  if (var.isLogical) return ClassFormat{1, at::kByte, at::kBool, false};
  switch (var.class_type) {
    case MAT_C_DOUBLE: return ClassFormat{8, at::kDouble, at::kDouble, false};
    case MAT_C_SINGLE: return ClassFormat{4, at::kFloat, at::kFloat, false};
    case MAT_C_INT8: return ClassFormat{1, at::kChar, at::kChar, false};
    case MAT_C_UINT8: return ClassFormat{1, at::kByte, at::kByte, false};
    case MAT_C_INT16: return ClassFormat{2, at::kShort, at::kShort, false};
    case MAT_C_INT32: return ClassFormat{4, at::kInt, at::kInt, false};
    case MAT_C_INT64: return ClassFormat{8, at::kLong, at::kLong, false};
    case MAT_C_UINT16: return ClassFormat{2, at::kShort, at::kInt, true};
    case MAT_C_UINT32: return ClassFormat{4, at::kInt, at::kLong, true};
    case MAT_C_UINT64: return ClassFormat{8, at::kLong, at::kLong, true};
    default: return std::nullopt;
  }
}

std::string variable_names(mat_t* mat) {
  Mat_Rewind(mat);
  std::string names;
  // Bounded: a corrupt file could otherwise list names without end.
  for (int i = 0; i < 10000; ++i) {
    MatVar info(Mat_VarReadNextInfo(mat));
    if (!info) break;
    names += (names.empty() ? "" : ", ") + std::string(info->name ? info->name : "?");
  }
  return names.empty() ? "no variables" : names;
}

std::string dims_text(const matvar_t& var) {
  std::string out;
  for (int d = 0; d < var.rank; ++d) {
    if (d) out += 'x';
    out += std::to_string(var.dims[d]);
  }
  return out;
}

// libmatio reads a variable whose data the file does not fully hold without reporting
// an error (the missing bytes stay zero), so a MAT 5 file is checked first: every
// top-level data element (one per variable, compressed or not) must fit in the file.
// A cut download fails here instead of yielding zeroed images. MAT 7.3 files are HDF5,
// which checks its own structure; MAT 4 files have no such header and are left to matio.
constexpr std::uint32_t kMiMatrix = 14;

// The parts of an uncompressed miMATRIX element in [begin, end) (array flags,
// dimensions, name, data; nested matrices of cells and structs) must each fit in it:
// libmatio allocates what a part declares before reading it, so a corrupt dimensions
// part of 4 GiB in a 300-byte file would be allocated (found by fuzzing).
template <typename U32>
void check_matrix_parts(std::ifstream& in, const fs::path& file, std::uint64_t begin, std::uint64_t end, const U32& u32,
                        int depth) {
  if (depth > 32) fail(file, "corrupt .mat file: matrices nested deeper than 32 levels");
  for (std::uint64_t pos = begin; pos + 8 <= end;) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(pos));
    if (!in.read(reinterpret_cast<char*>(tag), sizeof tag)) fail(file, "read error");
    const std::uint32_t type = u32(tag);
    if (type >> 16) {  // compact form: tag and data in 8 bytes
      pos += 8;
      continue;
    }
    const std::uint64_t nbytes = u32(tag + 4);
    if (nbytes > end - pos - 8)
      fail(file, "corrupt .mat file: the part at byte " + std::to_string(pos) + " declares " + std::to_string(nbytes) +
                     " bytes, its matrix has " + std::to_string(end - pos - 8) + " more");
    if (type == kMiMatrix) check_matrix_parts(in, file, pos + 8, pos + 8 + nbytes, u32, depth + 1);
    pos += 8 + (nbytes + 7) / 8 * 8;  // parts are padded to 8 bytes
  }
}

void check_mat5_elements(const fs::path& file, std::uint64_t file_size) {
  std::ifstream in(file, std::ios::binary);
  unsigned char header[128];
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return;
  const bool little = header[126] == 'I' && header[127] == 'M';
  const bool big = header[126] == 'M' && header[127] == 'I';
  if (!little && !big) return;
  const auto u16 = [&](const unsigned char* p) { return little ? p[0] | (p[1] << 8) : (p[0] << 8) | p[1]; };
  const auto u32 = [&](const unsigned char* p) {
    return little ? std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24)
                  : (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
  };
  if (u16(header + 124) != 0x0100) return;  // 0x0200 is 7.3 (HDF5)
  std::uint64_t pos = sizeof header;
  while (pos < file_size) {
    const std::uint64_t left = file_size - pos;
    unsigned char tag[8] = {};
    in.seekg(static_cast<std::streamoff>(pos));
    in.read(reinterpret_cast<char*>(tag), static_cast<std::streamsize>(std::min<std::uint64_t>(left, 8)));
    if (!in && left >= 8) fail(file, "read error");
    if (left < 8) {
      // A few bytes of padding may end a file; anything else is a cut tag.
      if (std::all_of(tag, tag + left, [](unsigned char c) { return c == 0; })) return;
      fail(file, "truncated .mat file: " + std::to_string(left) + " bytes of a data element header at byte " +
                     std::to_string(pos) + " (incomplete download?)");
    }
    const std::uint32_t type = u32(tag);
    if (type >> 16) {  // the compact form of a small element: tag and data in 8 bytes
      pos += 8;
      continue;
    }
    const std::uint64_t nbytes = u32(tag + 4);
    if (nbytes > left - 8)
      fail(file, "truncated .mat file: the data element at byte " + std::to_string(pos) + " declares " +
                     std::to_string(nbytes) + " bytes, the file has " + std::to_string(left - 8) +
                     " more (incomplete download?)");
    if (type == kMiMatrix) check_matrix_parts(in, file, pos + 8, pos + 8 + nbytes, u32, 0);
    pos += 8 + nbytes;
  }
}

}  // namespace

at::Tensor read_mat_variable(const std::filesystem::path& file, const std::string& name) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status)) fail(file, "no such file");
  if (!fs::is_regular_file(status)) fail(file, "not a regular file");
  const std::uint64_t file_size = fs::file_size(file, ec);

  check_mat5_elements(file, file_size);
  MatFile mat(Mat_Open(file.c_str(), MAT_ACC_RDONLY));
  if (!mat) fail(file, "not a readable MATLAB .mat file (level 5 or 7.3)");
  const std::string variable = "variable '" + name + "'";

  // The header first: is it a plain numeric array of a plausible size?
  MatVar info(Mat_VarReadInfo(mat.get(), name.c_str()));
  if (!info) fail(file, "no " + variable + " (it has " + variable_names(mat.get()) + ")");
  const std::string described = variable + " (" + dims_text(*info) + " " + class_name(info->class_type) + ")";
  if (info->isComplex) fail(file, described + " is complex; only real numeric arrays are supported");
  const std::optional<ClassFormat> format = class_format(*info);
  if (!format)
    fail(file, variable + " is of class " + class_name(info->class_type) +
                   "; only numeric (double, single, int8-64, uint8-64) and logical arrays are supported");
  if (info->rank < 1 || info->rank > 64 || !info->dims) fail(file, variable + " has " + std::to_string(info->rank) + " dimensions");
  std::vector<std::int64_t> dims;
  std::uint64_t count = 1;
  for (int d = 0; d < info->rank; ++d) {
    const std::uint64_t n = info->dims[d];
    if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) || __builtin_mul_overflow(count, n, &count))
      fail(file, described + " is too large");
    dims.push_back(static_cast<std::int64_t>(n));
  }
  // Every element takes at least one byte in the file before compression.
  if (count > file_size * kMaxDeflateRatio + 4096)
    fail(file, described + " declares " + std::to_string(count) + " elements, more than a " + std::to_string(file_size) +
                   "-byte file can hold");
  info.reset();

  MatVar var(Mat_VarRead(mat.get(), name.c_str()));
  if (!var) fail(file, "cannot read " + described + " (corrupt or truncated file)");
  // The full read must agree with the header read above.
  bool same_shape = var->rank == static_cast<int>(dims.size()) && var->dims;
  for (std::size_t d = 0; same_shape && d < dims.size(); ++d) same_shape = var->dims[d] == static_cast<std::size_t>(dims[d]);
  const std::optional<ClassFormat> read_format = class_format(*var);
  if (!same_shape || !read_format || read_format->tensor_type != format->tensor_type || var->isComplex)
    fail(file, "cannot read " + described + " consistently (corrupt file)");
  if (count > 0 && (!var->data || var->data_size != static_cast<int>(format->element_size) ||
                    var->nbytes < count * format->element_size))
    fail(file, "cannot read the data of " + described + " (corrupt or truncated file)");

  // The column-major buffer is the row-major array of the reversed dimensions.
  std::vector<std::int64_t> reversed(dims.rbegin(), dims.rend());
  at::Tensor out = at::empty(dims, at::TensorOptions().dtype(format->tensor_type));
  if (count == 0) return out;
  at::Tensor column_major = at::from_blob(var->data, reversed, at::TensorOptions().dtype(format->buffer_type));
  std::vector<std::int64_t> reverse_order(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) reverse_order[i] = static_cast<std::int64_t>(dims.size() - 1 - i);
  at::Tensor view = column_major.permute(reverse_order);

  if (format->tensor_type == at::kBool) {
    if (view.gt(1).any().item<bool>()) fail(file, described + " is logical but holds values other than 0 and 1");
    out.copy_(view.ne(0));
  } else if (format->is_unsigned_wide) {
    // The buffer was read through the signed type of the same width: undo the sign.
    at::Tensor widened = view.to(at::kLong);
    if (format->element_size < 8) {
      widened = widened.bitwise_and(static_cast<std::int64_t>((std::uint64_t{1} << (8 * format->element_size)) - 1));
    } else if (widened.lt(0).any().item<bool>()) {
      fail(file, described + " holds uint64 values above 2^63-1 (LibTorch has no uint64)");
    }
    out.copy_(widened);
  } else {
    out.copy_(view);
  }
  return out;
}

}  // namespace ood::io
