// The zip container: PyTorchStreamReader resolves record names relative to the
// archive's single top folder, whatever the writer called it.
#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

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

std::string record_text(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name) {
  auto [data, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

c10::IValue load(const std::string& file, caffe2::serialize::PyTorchStreamReader& reader) {
  // Written by PyTorch >= 2.1; older files are little-endian by definition.
  if (reader.hasRecord("byteorder") && record_text(reader, "byteorder") != "little") {
    fail(file, "big-endian files are not supported");
  }
  if (!reader.hasRecord("data.pkl")) fail(file, "zip archive without a data.pkl record (not written by torch.save)");
  auto [pickle, pickle_size] = reader.getRecord("data.pkl");

  std::unordered_map<std::string, TypedStorage> storages;
  const StorageLoader load_storage = [&](const StorageRequest& request) -> TypedStorage {
    if (auto it = storages.find(request.key); it != storages.end()) return it->second;
    const std::string name = "data/" + request.key;
    if (!reader.hasRecord(name)) fail(file, "missing storage record " + name);
    const std::int64_t needed = checked_mul(request.numel, element_size(request.dtype), file);
    // getRecord hands over a fresh CPU allocation, which the storage adopts: the
    // tensors own their memory without another copy.
    auto [data, size] = reader.getRecord(name);
    if (static_cast<std::int64_t>(size) < needed) {
      fail(file, "truncated file: storage " + request.key + " needs " + std::to_string(needed) + " bytes, " +
                     std::to_string(size) + " in the archive");
    }
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
    caffe2::serialize::PyTorchStreamReader reader(file);
    return load(file, reader);
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
