#include "pickle_writer.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "storage_types.hpp"

namespace ood::io::detail {
namespace {

class PickleWriter {
 public:
  std::string finish() { return std::move(out_); }

  void op(char opcode) { out_.push_back(opcode); }
  template <typename T>
  void raw(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));  // pickle's binary ints are little endian, as is the host
    out_.append(bytes, sizeof(T));
  }
  void integer(std::int64_t v) {
    if (v >= 0 && v < (1 << 8)) {
      op('K');
      raw(static_cast<std::uint8_t>(v));
    } else if (v >= 0 && v < (1 << 16)) {
      op('M');
      raw(static_cast<std::uint16_t>(v));
    } else if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max()) {
      op('J');
      raw(static_cast<std::int32_t>(v));
    } else {
      op('\x8a');  // LONG1: two's complement, any length
      raw(static_cast<std::uint8_t>(8));
      raw(v);
    }
  }
  void string(const std::string& s) {
    if (s.size() > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("string too long for pickle");
    op('X');
    raw(static_cast<std::uint32_t>(s.size()));
    out_ += s;
  }
  void int_tuple(c10::IntArrayRef values) {
    if (values.empty()) {
      op(')');
      return;
    }
    op('(');
    for (auto v : values) integer(v);
    op('t');
  }
  // Globals are memoized like Python does it, which keeps the pickle small.
  void global(const std::string& module, const std::string& name) {
    const std::string key = module + "\n" + name + "\n";
    if (auto it = memo_.find(key); it != memo_.end()) {
      get(it->second);
      return;
    }
    op('c');
    out_ += key;
    const auto index = static_cast<std::uint32_t>(memo_.size());
    memo_.emplace(key, index);
    put(index);
  }

 private:
  void put(std::uint32_t index) {
    if (index < 256) {
      op('q');
      raw(static_cast<std::uint8_t>(index));
    } else {
      op('r');
      raw(index);
    }
  }
  void get(std::uint32_t index) {
    if (index < 256) {
      op('h');
      raw(static_cast<std::uint8_t>(index));
    } else {
      op('j');
      raw(index);
    }
  }

  std::string out_;
  std::unordered_map<std::string, std::uint32_t> memo_;
};

}  // namespace

std::string pickle_tensor_dict(const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  PickleWriter w;
  w.op('\x80');  // PROTO 2
  w.raw(static_cast<std::uint8_t>(2));
  w.op('}');
  if (!entries.empty()) {
    w.op('(');
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto& [name, tensor] = entries[i];
      w.string(name);
      // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
      w.global("torch._utils", "_rebuild_tensor_v2");
      w.op('(');
      w.op('(');
      w.string("storage");
      w.global("torch", storage_type_name(tensor.scalar_type()));
      w.string(std::to_string(i));
      w.string("cpu");
      w.integer(tensor.numel());
      w.op('t');
      w.op('Q');  // BINPERSID
      w.integer(0);
      w.int_tuple(tensor.sizes());
      w.int_tuple(tensor.strides());
      w.op('\x89');  // NEWFALSE
      w.global("collections", "OrderedDict");
      w.op(')');
      w.op('R');
      w.op('t');
      w.op('R');
    }
    w.op('u');  // SETITEMS
  }
  w.op('.');
  return w.finish();
}

}  // namespace ood::io::detail
