// The zip container: PyTorchStreamReader resolves record names relative to the
// archive's single top folder, whatever the writer called it.
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string_view>
#include <unordered_map>

#include "container_formats.hpp"
#include "pickle_reader.hpp"

namespace ood::io::detail {
namespace {

std::string first_line(const char* message) {
  std::string text(message);
  return text.substr(0, text.find('\n'));
}

// One central directory entry, as far as loading needs it.
struct ZipEntry {
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0;
  std::uint64_t uncompressed = 0;
  std::uint64_t offset = 0;  // of the local header
};

std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Reads the central directory (zip64 included) before LibTorch's reader allocates
// anything: every record must be stored uncompressed, as torch.save writes them, so
// no record can claim more bytes than the file has. Keys are record names without
// the archive's top folder ("data.pkl", "data/0"), as PyTorchStreamReader uses them.
std::unordered_map<std::string, ZipEntry> central_directory(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "cannot open file");
  in.seekg(0, std::ios::end);
  const std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
  auto read_at = [&](std::uint64_t pos, std::uint64_t n) {
    if (pos > size || n > size - pos) fail(file, "corrupt zip archive (a directory entry points past the end)");
    std::string bytes(static_cast<std::size_t>(n), '\0');
    in.seekg(static_cast<std::streamoff>(pos));
    in.read(bytes.data(), static_cast<std::streamsize>(n));
    if (!in) fail(file, "cannot read file");
    return bytes;
  };
  // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB.
  const std::uint64_t tail_size = std::min<std::uint64_t>(size, 22 + 65535);
  const std::string tail = read_at(size - tail_size, tail_size);
  std::size_t eocd = std::string::npos;
  for (std::size_t i = tail.size() >= 22 ? tail.size() - 22 + 1 : 0; i-- > 0;) {
    if (tail.compare(i, 4, "PK\x05\x06") == 0) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) fail(file, "corrupt or truncated zip archive (no end of central directory)");
  const auto* e = reinterpret_cast<const unsigned char*>(tail.data()) + eocd;
  std::uint64_t count = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: a locator just before the record points to the zip64 end record.
    const std::uint64_t eocd_pos = size - tail_size + eocd;
    if (eocd_pos < 20) fail(file, "corrupt zip archive (no zip64 locator)");
    const std::string locator = read_at(eocd_pos - 20, 20);
    if (locator.compare(0, 4, "PK\x06\x07") != 0) fail(file, "corrupt zip archive (no zip64 locator)");
    const std::string end64 = read_at(le(reinterpret_cast<const unsigned char*>(locator.data()) + 8, 8), 56);
    if (end64.compare(0, 4, "PK\x06\x06") != 0) fail(file, "corrupt zip archive (bad zip64 end record)");
    const auto* z = reinterpret_cast<const unsigned char*>(end64.data());
    count = le(z + 32, 8);
    cd_size = le(z + 40, 8);
    cd_offset = le(z + 48, 8);
  }
  // Each entry takes at least 46 bytes: the count cannot exceed what the size holds.
  if (count > cd_size / 46) fail(file, "corrupt zip archive (central directory too small for its entries)");
  const std::string cd = read_at(cd_offset, cd_size);
  const auto* c = reinterpret_cast<const unsigned char*>(cd.data());
  std::unordered_map<std::string, ZipEntry> entries;
  std::size_t pos = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (cd.size() - pos < 46 || cd.compare(pos, 4, "PK\x01\x02") != 0)
      fail(file, "corrupt zip archive (bad central directory entry)");
    const auto* h = c + pos;
    ZipEntry entry;
    entry.method = static_cast<std::uint16_t>(le(h + 10, 2));
    entry.crc = static_cast<std::uint32_t>(le(h + 16, 4));
    entry.compressed = le(h + 20, 4);
    entry.uncompressed = le(h + 24, 4);
    const std::size_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    entry.offset = le(h + 42, 4);
    if (cd.size() - pos - 46 < name_len + extra_len + comment_len)
      fail(file, "corrupt zip archive (bad central directory entry)");
    std::string name = cd.substr(pos + 46, name_len);
    // Zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF.
    for (std::size_t x = pos + 46 + name_len, x_end = x + extra_len; x + 4 <= x_end;) {
      const std::uint64_t id = le(c + x, 2), len = le(c + x + 2, 2);
      if (x + 4 + len > x_end) break;
      if (id == 1) {
        std::size_t f = x + 4;
        auto take64 = [&](std::uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (f + 8 > x + 4 + len) fail(file, "corrupt zip archive (short zip64 field)");
          field = le(c + f, 8);
          f += 8;
        };
        take64(entry.uncompressed);
        take64(entry.compressed);
        take64(entry.offset);
      }
      x += 4 + len;
    }
    pos += 46 + name_len + extra_len + comment_len;
    const auto slash = name.find('/');
    const std::string record = slash == std::string::npos ? name : name.substr(slash + 1);
    if (entry.method != 0)
      fail(file, "record " + record + " is compressed (method " + std::to_string(entry.method) +
                     "); torch.save stores records uncompressed");
    if (entry.compressed != entry.uncompressed || entry.offset > size || entry.compressed > size - entry.offset)
      fail(file, "corrupt zip archive (record " + record + " claims " + std::to_string(entry.uncompressed) +
                     " bytes; the file has " + std::to_string(size) + ")");
    entries.emplace(record, entry);
  }
  return entries;
}

// Verifies the record's CRC-32 (LibTorch's reader does not).
void check_crc(const std::string& file, const std::string& record, const void* data, std::size_t size,
               const std::unordered_map<std::string, ZipEntry>& entries) {
  const auto it = entries.find(record);
  if (it == entries.end()) fail(file, "corrupt zip archive (record " + record + " is not in the central directory)");
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  for (std::size_t left = size; left > 0;) {
    const uInt n = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  if (static_cast<std::uint32_t>(crc) != it->second.crc)
    fail(file, "corrupt file: the CRC-32 of record " + record + " does not match (damaged data)");
}

std::string record_text(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name,
                        const std::string& file, const std::unordered_map<std::string, ZipEntry>& entries) {
  auto [data, size] = reader.getRecord(name);
  check_crc(file, name, data.get(), size, entries);
  return std::string(static_cast<const char*>(data.get()), size);
}

c10::IValue load(const std::string& file, caffe2::serialize::PyTorchStreamReader& reader,
                 const std::unordered_map<std::string, ZipEntry>& entries) {
  // Written by PyTorch >= 2.1; older files are little-endian by definition.
  if (reader.hasRecord("byteorder") && record_text(reader, "byteorder", file, entries) != "little") {
    fail(file, "big-endian files are not supported");
  }
  if (!reader.hasRecord("data.pkl")) fail(file, "zip archive without a data.pkl record (not written by torch.save)");
  auto [pickle, pickle_size] = reader.getRecord("data.pkl");
  check_crc(file, "data.pkl", pickle.get(), pickle_size, entries);

  std::unordered_map<std::string, TypedStorage> storages;
  const StorageLoader load_storage = [&](const StorageRequest& request) -> TypedStorage {
    if (auto it = storages.find(request.key); it != storages.end()) return it->second;
    const std::string name = "data/" + request.key;
    if (!reader.hasRecord(name)) fail(file, "missing storage record " + name);
    const std::int64_t needed = checked_mul(request.numel, element_size(request.dtype), file);
    // Checked against the directory before anything is allocated.
    const auto entry = entries.find(name);
    if (entry == entries.end()) fail(file, "missing storage record " + name);
    if (entry->second.uncompressed < static_cast<std::uint64_t>(needed)) {
      fail(file, "truncated file: storage " + request.key + " needs " + std::to_string(needed) + " bytes, " +
                     std::to_string(entry->second.uncompressed) + " in the archive");
    }
    // getRecord hands over a fresh CPU allocation, which the storage adopts: the
    // tensors own their memory without another copy.
    auto [data, size] = reader.getRecord(name);
    if (static_cast<std::int64_t>(size) < needed) {
      fail(file, "truncated file: storage " + request.key + " needs " + std::to_string(needed) + " bytes, " +
                     std::to_string(size) + " in the archive");
    }
    check_crc(file, name, data.get(), size, entries);
    TypedStorage storage{c10::Storage(c10::Storage::use_byte_size_t(), size, std::move(data), nullptr, false),
                         request.dtype, request.numel};
    storages.emplace(request.key, storage);
    return storage;
  };
  std::size_t pos = 0;
  return unpickle(std::string_view(static_cast<const char*>(pickle.get()), pickle_size), pos, file, load_storage);
}

}  // namespace

c10::IValue load_zip_file(const std::string& file) {
  try {
    const auto entries = central_directory(file);
    caffe2::serialize::PyTorchStreamReader reader(file);
    return load(file, reader, entries);
  } catch (const c10::Error& e) {
    // The reader reports every zip problem (truncation, CRC, missing version) this way.
    fail(file, "corrupt or truncated zip archive (" + first_line(e.what_without_backtrace()) + ")");
  }
}

void write_zip(const std::function<std::size_t(const void*, std::size_t)>& sink, const std::string& pickle,
               const std::vector<at::Tensor>& storages) {
  caffe2::serialize::PyTorchStreamWriter writer(sink);
  try {
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    // What PyTorch >= 2.1 writes; older versions ignore the record.
    writer.writeRecord("byteorder", "little", 6);
    for (std::size_t i = 0; i < storages.size(); ++i) {
      writer.writeRecord("data/" + std::to_string(i), storages[i].data_ptr(), storages[i].nbytes());
    }
    writer.writeEndOfFile();  // adds the `version` record and the central directory
  } catch (...) {
    // The writer's destructor finalizes an unfinished archive and must not throw there.
    if (!writer.finalized()) {
      try {
        writer.writeEndOfFile();
      } catch (...) {
      }
    }
    throw;
  }
}

}  // namespace ood::io::detail
