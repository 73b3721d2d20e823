#pragma once
// Internal: the typed storage classes (`torch.FloatStorage`, ...) that name a
// storage's dtype in persistent ids, shared by the reader and the writer.
#include <c10/core/ScalarType.h>

namespace ood::io::detail {

struct StorageTypeName {
  const char* name;  // attribute of the `torch` module
  at::ScalarType dtype;
};

inline constexpr StorageTypeName kStorageTypes[] = {
    {"FloatStorage", at::kFloat},         {"DoubleStorage", at::kDouble},
    {"HalfStorage", at::kHalf},           {"BFloat16Storage", at::kBFloat16},
    {"LongStorage", at::kLong},           {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},         {"CharStorage", at::kChar},
    {"ByteStorage", at::kByte},           {"BoolStorage", at::kBool},
    {"ComplexFloatStorage", at::kComplexFloat}, {"ComplexDoubleStorage", at::kComplexDouble},
};

/// The storage class torch.save uses for `dtype`, or nullptr when there is none.
inline const char* storage_type_name(at::ScalarType dtype) {
  for (const auto& t : kStorageTypes) {
    if (t.dtype == dtype) return t.name;
  }
  return nullptr;
}

}  // namespace ood::io::detail
