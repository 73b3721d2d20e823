// The pre-1.6 container: five pickles in a row, then the raw storages in the order
// of the fourth pickle (the list of storage keys), each preceded by its element count.
#include <c10/core/CPUAllocator.h>

#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "container_formats.hpp"
#include "pickle_reader.hpp"

namespace ood::io::detail {
namespace {

constexpr std::int64_t kLegacyProtocolVersion = 1001;
// 0x1950a86a20f9469cfc6c as pickle's LONG1 writes it: length 10, little endian.
constexpr unsigned char kMagicLong1[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// The magic number does not fit the interpreter's 64-bit ints, so its pickle is
// matched byte by byte. Returns the position after its STOP.
std::optional<std::size_t> skip_magic(const std::string& bytes) {
  std::size_t pos = 0;
  auto at = [&](std::size_t i) { return i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : -1; };
  if (at(pos) == 0x80) pos += 2;  // PROTO n
  if (at(pos) == 0x95) pos += 9;  // FRAME of protocols 4 and 5
  for (unsigned char c : kMagicLong1) {
    if (at(pos++) != c) return std::nullopt;
  }
  if (at(pos++) != '.') return std::nullopt;
  return pos;
}

std::string str(std::int64_t v) { return std::to_string(v); }

}  // namespace

bool looks_like_legacy_file(const std::string& head) { return skip_magic(head).has_value(); }

c10::IValue load_legacy_file(const std::string& file, const std::string& bytes) {
  auto after_magic = skip_magic(bytes);
  if (!after_magic) fail(file, "not a PyTorch file (neither a zip archive nor a legacy pickle)");
  std::size_t pos = *after_magic;

  const StorageLoader no_storages = [&](const StorageRequest&) -> TypedStorage {
    fail(file, "corrupt file: a storage outside the pickled object");
  };
  const auto version = unpickle(bytes, pos, file, no_storages);
  if (!version.isInt() || version.toInt() != kLegacyProtocolVersion) {
    fail(file, "unsupported legacy file version (expected " + str(kLegacyProtocolVersion) + ")");
  }
  const auto sys_info = unpickle(bytes, pos, file, no_storages);
  if (!sys_info.isGenericDict()) fail(file, "corrupt file: system info is not a dict");
  const auto info = sys_info.toGenericDict();
  const auto little = info.find(std::string("little_endian"));
  if (little == info.end() || !little->value().isBool()) fail(file, "corrupt file: system info has no little_endian flag");
  if (!little->value().toBool()) fail(file, "big-endian legacy files are not supported");

  // Storages are allocated when the object first names them and filled after it,
  // because their bytes follow the pickle.
  std::unordered_map<std::string, TypedStorage> storages;
  const StorageLoader allocate = [&](const StorageRequest& request) -> TypedStorage {
    if (auto it = storages.find(request.key); it != storages.end()) return it->second;
    const std::int64_t nbytes = checked_mul(request.numel, element_size(request.dtype), file);
    // Bounds the allocation by what the file can hold before trusting the count.
    if (nbytes > static_cast<std::int64_t>(bytes.size())) {
      fail(file, "truncated file: storage " + request.key + " needs " + str(nbytes) + " bytes, the file has " +
                     str(static_cast<std::int64_t>(bytes.size())));
    }
    TypedStorage storage{c10::Storage(c10::Storage::use_byte_size_t(), static_cast<std::size_t>(nbytes),
                                      c10::GetDefaultCPUAllocator(), /*resizable=*/false),
                         request.dtype, request.numel};
    storages.emplace(request.key, storage);
    return storage;
  };
  auto object = unpickle(bytes, pos, file, allocate);

  const auto keys = unpickle(bytes, pos, file, no_storages);
  if (!keys.isList()) fail(file, "corrupt file: the storage key list is not a list");
  std::unordered_set<std::string> filled;
  for (const auto& key_value : keys.toListRef()) {
    if (!key_value.isString()) fail(file, "corrupt file: a storage key is not a string");
    const std::string& key = key_value.toStringRef();
    auto it = storages.find(key);
    if (it == storages.end()) fail(file, "corrupt file: storage " + key + " is listed but never used");
    if (!filled.insert(key).second) fail(file, "corrupt file: storage " + key + " is listed twice");
    const TypedStorage& storage = it->second;

    auto left = static_cast<std::int64_t>(bytes.size() - pos);
    if (left < 8) fail(file, "truncated file: storage " + key + " needs 8 bytes for its size, " + str(left) + " left");
    std::int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, sizeof count);
    pos += sizeof count;
    left -= 8;
    if (count != storage.numel) {
      fail(file, "corrupt file: storage " + key + " holds " + str(count) + " elements, the pickle says " +
                     str(storage.numel));
    }
    const auto nbytes = static_cast<std::int64_t>(storage.storage.nbytes());
    if (nbytes > left) fail(file, "truncated file: storage " + key + " needs " + str(nbytes) + " bytes, " + str(left) + " left");
    if (nbytes > 0) std::memcpy(storage.storage.data(), bytes.data() + pos, static_cast<std::size_t>(nbytes));
    pos += static_cast<std::size_t>(nbytes);
  }
  for (const auto& [key, storage] : storages) {
    if (!filled.count(key)) fail(file, "corrupt file: storage " + key + " has no data");
  }
  return object;
}

}  // namespace ood::io::detail
