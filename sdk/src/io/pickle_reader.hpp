#pragma once
// Internal: the strict pickle interpreter shared by the zip and the legacy format.
// It knows the object layout torch.save produces but not where storage bytes live;
// each container format supplies them through a StorageLoader.
#include <ATen/core/ivalue.h>
#include <c10/core/Storage.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ood::io::detail {

/// Bytes of one serialized storage, interpreted with the dtype of the first
/// persistent id that named it (as torch.load does).
struct TypedStorage {
  c10::Storage storage;
  at::ScalarType dtype = at::ScalarType::Byte;
  std::int64_t numel = 0;  // elements of `dtype` the file promises
};

/// The root storage a persistent id ('storage', type, key, location, numel[, view])
/// names; views of legacy files are resolved by the interpreter.
struct StorageRequest {
  std::string key;
  at::ScalarType dtype = at::ScalarType::Byte;
  std::int64_t numel = 0;
};

/// Returns the storage for a request; called once per persistent id occurrence, so
/// implementations must hand out the same storage for the same key.
using StorageLoader = std::function<TypedStorage(const StorageRequest&)>;

/// How deeply containers (lists, dicts, tuples) may nest in a pickle. torch.save's
/// state dicts need 3; LibTorch destroys and walks values recursively, so a file of
/// 100000 nested lists would overflow the stack.
inline constexpr std::size_t kMaxPickleDepth = 100;

/// Decodes the pickle that starts at `bytes[pos]` and leaves `pos` just past its
/// STOP opcode. `file` only names the file in error messages.
/// Throws ood::FileError("<file>: <what>").
c10::IValue unpickle(std::string_view bytes, std::size_t& pos, const std::string& file,
                     const StorageLoader& load_storage);

/// Throws ood::FileError("<file>: <what>").
[[noreturn]] void fail(const std::string& file, const std::string& what);

/// Element size of the dtypes storages may have.
std::int64_t element_size(at::ScalarType dtype);

/// `a * b` for the byte counts of untrusted sizes; throws FileError on overflow.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& file);

}  // namespace ood::io::detail
