#include "pickle_reader.hpp"

#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <ATen/ops/empty.h>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <bit>
#include <cstring>
#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ood/error.hpp"
#include "storage_types.hpp"

namespace ood::io::detail {

void fail(const std::string& file, const std::string& what) { throw FileError(file + ": " + what); }

std::int64_t element_size(at::ScalarType dtype) { return static_cast<std::int64_t>(c10::elementSize(dtype)); }

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& file) {
  std::int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
    fail(file, "corrupt size: " + std::to_string(a) + " * " + std::to_string(b) + " overflows");
  }
  return r;
}

namespace {

static_assert(std::endian::native == std::endian::little,
              "storage bytes are copied as they are; a big-endian host would need byte swapping");

// The callables a pickle may name. Anything else is refused when its GLOBAL opcode is
// read, before it could be called.
enum class Callable {
  OrderedDict,
  RebuildTensor,      // torch._utils._rebuild_tensor(storage, offset, size, stride)
  RebuildTensorV2,    // ... + requires_grad, backward_hooks[, metadata]
  RebuildParameter,   // (tensor, requires_grad, backward_hooks[, state])
  StorageType,        // torch.FloatStorage & co.: only meaningful inside persistent ids
  Device,             // torch.device(type[, index])
  RestoreTypeTag,     // LibTorch's pickler: (container, type string) -> container
  BuildList,          // LibTorch's pickler: build_intlist & co. (list) -> list
};

struct StorageView {
  TypedStorage root;
  std::int64_t offset = 0;  // elements into root, non-zero for legacy storage views
  std::int64_t numel = 0;
};

// A stack or memo entry. Python values are IValues; the other kinds exist only while
// a tensor is being rebuilt and may never end up inside a container.
struct Item {
  enum class Kind { Value, Global, Storage, RawTuple };
  Kind kind = Kind::Value;
  c10::IValue value;
  Callable callable = Callable::OrderedDict;
  std::string global_name;                   // Kind::Global, for messages
  at::ScalarType dtype = at::ScalarType::Byte;  // Callable::StorageType
  StorageView storage;                       // Kind::Storage
  // Kind::RawTuple: a tuple holding non-values. Shared, so that DUP and memo reads of
  // nested raw tuples copy a pointer, not a tree (2^n items for n levels).
  std::shared_ptr<const std::vector<Item>> elements;
  std::size_t depth = 0;  // Kind::RawTuple: its nesting depth

  static Item of(c10::IValue v) {
    Item item;
    item.value = std::move(v);
    return item;
  }
};

struct GlobalEntry {
  const char* module;
  const char* name;
  Callable callable;
  at::ScalarType dtype;
};

constexpr GlobalEntry kGlobals[] = {
    {"collections", "OrderedDict", Callable::OrderedDict, at::kByte},
    {"torch._utils", "_rebuild_tensor", Callable::RebuildTensor, at::kByte},
    {"torch._utils", "_rebuild_tensor_v2", Callable::RebuildTensorV2, at::kByte},
    {"torch._utils", "_rebuild_parameter", Callable::RebuildParameter, at::kByte},
    {"torch._utils", "_rebuild_parameter_with_state", Callable::RebuildParameter, at::kByte},
    // Untyped storages count bytes.
    {"torch", "UntypedStorage", Callable::StorageType, at::kByte},
    {"torch", "device", Callable::Device, at::kByte},
    {"torch.jit._pickle", "restore_type_tag", Callable::RestoreTypeTag, at::kByte},
    {"torch.jit._pickle", "build_intlist", Callable::BuildList, at::kByte},
    {"torch.jit._pickle", "build_doublelist", Callable::BuildList, at::kByte},
    {"torch.jit._pickle", "build_boollist", Callable::BuildList, at::kByte},
    {"torch.jit._pickle", "build_tensorlist", Callable::BuildList, at::kByte},
};

// Opcodes, named as in CPython's pickletools.
enum Op : std::uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', NONE = 'N',
  BININT = 'J', BININT1 = 'K', BININT2 = 'M', BINFLOAT = 'G',
  BINUNICODE = 'X', BINBYTES = 'B', SHORT_BINBYTES = 'C', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  APPEND = 'a', APPENDS = 'e', BUILD = 'b', GLOBAL = 'c', EMPTY_DICT = '}', EMPTY_LIST = ']',
  EMPTY_TUPLE = ')', TUPLE = 't', BINGET = 'h', LONG_BINGET = 'j', BINPUT = 'q',
  LONG_BINPUT = 'r', SETITEM = 's', SETITEMS = 'u', REDUCE = 'R', BINPERSID = 'Q',
  PROTO = 0x80, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89,
  LONG1 = 0x8a, LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
};

class Unpickler {
 public:
  Unpickler(std::string_view bytes, std::size_t pos, const std::string& file, const StorageLoader& loader)
      : bytes_(bytes), pos_(pos), file_(file), load_storage_(loader) {}

  c10::IValue run();
  std::size_t position() const { return pos_; }

 private:
  [[noreturn]] void corrupt(const std::string& what) const {
    fail(file_, "corrupt pickle at byte " + std::to_string(op_pos_) + ": " + what);
  }

  [[noreturn]] void truncated() const {
    fail(file_, "truncated file: pickle data ends at byte " + std::to_string(bytes_.size()) +
                    " before its STOP opcode");
  }
  std::string_view take(std::uint64_t n) {
    if (n > bytes_.size() - pos_) truncated();
    auto view = bytes_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return view;
  }
  template <typename T>
  T read_le() {
    T value;
    std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
    return value;
  }
  std::string read_line() {
    auto end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) truncated();
    std::string line(bytes_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }
  std::int64_t read_long(std::uint64_t n);

  void push(c10::IValue v) { stack_.push_back(Item::of(std::move(v))); }
  Item pop() {
    if (stack_.size() <= stack_floor()) corrupt("stack underflow");
    Item item = std::move(stack_.back());
    stack_.pop_back();
    return item;
  }
  Item& top() {
    if (stack_.size() <= stack_floor()) corrupt("stack underflow");
    return stack_.back();
  }
  std::size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Removes the items above the latest MARK and the mark itself.
  std::vector<Item> pop_to_mark() {
    if (marks_.empty()) corrupt("no MARK to pop to");
    std::size_t start = marks_.back();
    marks_.pop_back();
    std::vector<Item> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(start)),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(start);
    return items;
  }

  c10::IValue value_of(Item&& item, const char* where) const;
  std::string describe(const Item& item) const;
  Item make_tuple(std::vector<Item> items);
  // Container nesting, bounded by kMaxPickleDepth: LibTorch's IValue destructor (and
  // every other walk over a value) recurses once per level.
  std::size_t depth_of(const Item& item) const;
  std::size_t value_depth(const c10::IValue& v) const;
  void record_depth(const c10::IValue& container, std::size_t depth);
  void nest(const c10::IValue& parent, const Item& child);
  Item resolve_global(const std::string& module, const std::string& name) const;
  Item persistent_load(Item pid);
  Item reduce(const Item& callable, Item args);
  at::Tensor rebuild_tensor(const std::vector<Item>& args, bool v2);
  std::vector<std::int64_t> int_tuple(const Item& item, const char* what) const;
  void append(Item& list, std::vector<Item> items);
  void set_items(Item& dict, std::vector<Item> items);
  void memo_put(std::uint64_t key) { memo_[key] = top(); }
  void memo_get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) corrupt("memo entry " + std::to_string(key) + " read before it was written");
    stack_.push_back(it->second);
  }

  std::string_view bytes_;
  std::size_t pos_;
  std::size_t op_pos_ = 0;
  const std::string& file_;
  const StorageLoader& load_storage_;
  std::vector<Item> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Item> memo_;
  // Depth of every container seen, and the containers already stored inside another
  // one (which torch.save never changes afterwards: refusing that keeps the recorded
  // depths exact without updating parents). keep_ holds them so that no address is
  // reused by a new container while it is a key here.
  std::unordered_map<const void*, std::size_t> depth_;
  std::unordered_set<const void*> frozen_;
  std::vector<c10::IValue> keep_;
};

bool is_container(const c10::IValue& v) { return v.isList() || v.isGenericDict() || v.isTuple(); }

std::size_t Unpickler::value_depth(const c10::IValue& v) const {
  if (!is_container(v)) return 0;
  auto it = depth_.find(v.internalToPointer());
  return it == depth_.end() ? 1 : it->second;
}

std::size_t Unpickler::depth_of(const Item& item) const {
  if (item.kind == Item::Kind::RawTuple) return item.depth;
  if (item.kind == Item::Kind::Value) return value_depth(item.value);
  return 0;
}

void Unpickler::record_depth(const c10::IValue& container, std::size_t depth) {
  if (depth > kMaxPickleDepth)
    corrupt("containers nested deeper than " + std::to_string(kMaxPickleDepth) + " levels (the limit)");
  auto [it, inserted] = depth_.try_emplace(container.internalToPointer(), depth);
  if (inserted) keep_.push_back(container);
  else it->second = std::max(it->second, depth);
}

void Unpickler::nest(const c10::IValue& parent, const Item& child) {
  const void* p = parent.internalToPointer();
  if (frozen_.count(p)) corrupt("a container is changed after it was stored in another one");
  if (child.kind == Item::Kind::Value && is_container(child.value)) {
    if (child.value.internalToPointer() == p) corrupt("a container cannot contain itself");
    record_depth(child.value, value_depth(child.value));
    frozen_.insert(child.value.internalToPointer());
  }
  record_depth(parent, std::max(value_depth(parent), depth_of(child) + 1));
}

std::int64_t Unpickler::read_long(std::uint64_t n) {
  if (n > 8) corrupt("integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
  auto raw = take(n);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < n; ++i) value |= std::uint64_t(std::uint8_t(raw[i])) << (8 * i);
  if (n > 0 && n < 8 && (std::uint8_t(raw[n - 1]) & 0x80)) value |= ~std::uint64_t(0) << (8 * n);  // sign
  return static_cast<std::int64_t>(value);
}

std::string Unpickler::describe(const Item& item) const {
  switch (item.kind) {
    case Item::Kind::Value: return item.value.tagKind();
    case Item::Kind::Global: return "global '" + item.global_name + "'";
    case Item::Kind::Storage: return "storage";
    case Item::Kind::RawTuple: return "tuple of storages or globals";
  }
  return "?";
}

c10::IValue Unpickler::value_of(Item&& item, const char* where) const {
  if (item.kind != Item::Kind::Value) {
    corrupt(std::string("a ") + describe(item) + " cannot be " + where +
            " (only tensors and plain Python values are supported)");
  }
  return std::move(item.value);
}

Item Unpickler::make_tuple(std::vector<Item> items) {
  bool plain = true;
  std::size_t depth = 1;
  for (const auto& item : items) {
    plain = plain && item.kind == Item::Kind::Value;
    depth = std::max(depth, depth_of(item) + 1);
  }
  if (depth > kMaxPickleDepth)
    corrupt("containers nested deeper than " + std::to_string(kMaxPickleDepth) + " levels (the limit)");
  if (!plain) {
    Item raw;
    raw.kind = Item::Kind::RawTuple;
    raw.depth = depth;
    raw.elements = std::make_shared<const std::vector<Item>>(std::move(items));
    return raw;
  }
  std::vector<c10::IValue> values;
  values.reserve(items.size());
  for (auto& item : items) {
    if (is_container(item.value)) {
      record_depth(item.value, value_depth(item.value));
      frozen_.insert(item.value.internalToPointer());
    }
    values.push_back(std::move(item.value));
  }
  Item tuple = Item::of(c10::ivalue::Tuple::create(std::move(values)));
  record_depth(tuple.value, depth);
  return tuple;
}

Item Unpickler::resolve_global(const std::string& module, const std::string& name) const {
  auto global = [&](Callable callable, at::ScalarType dtype) {
    Item item;
    item.kind = Item::Kind::Global;
    item.callable = callable;
    item.dtype = dtype;
    item.global_name = module + "." + name;
    return item;
  };
  if (module == "torch") {
    for (const auto& t : kStorageTypes) {
      if (name == t.name) return global(Callable::StorageType, t.dtype);
    }
  }
  for (const auto& g : kGlobals) {
    if (module == g.module && name == g.name) return global(g.callable, g.dtype);
  }
  std::string what = "unsupported pickle global '" + module + "." + name +
                     "' (only torch tensor/storage globals and collections.OrderedDict are allowed)";
  if (module.rfind("__torch__", 0) == 0) what += "; this looks like a TorchScript archive, load it with torch::jit::load";
  fail(file_, what);
}

// Tensor arguments of the rebuild functions are written as plain tuples of ints.
std::vector<std::int64_t> Unpickler::int_tuple(const Item& item, const char* what) const {
  if (item.kind != Item::Kind::Value || !item.value.isTuple()) corrupt(std::string(what) + " is not a tuple");
  std::vector<std::int64_t> out;
  for (const auto& v : item.value.toTupleRef().elements()) {
    if (!v.isInt()) corrupt(std::string(what) + " holds a " + v.tagKind() + " instead of an int");
    out.push_back(v.toInt());
  }
  return out;
}

at::Tensor Unpickler::rebuild_tensor(const std::vector<Item>& args, bool v2) {
  const std::size_t min_args = v2 ? 6 : 4;
  const std::size_t max_args = v2 ? 7 : 4;
  if (args.size() < min_args || args.size() > max_args) {
    corrupt("tensor rebuild with " + std::to_string(args.size()) + " arguments");
  }
  if (args[0].kind != Item::Kind::Storage) corrupt("tensor rebuild from a " + describe(args[0]) + " instead of a storage");
  const StorageView& storage = args[0].storage;
  if (args[1].kind != Item::Kind::Value || !args[1].value.isInt()) corrupt("tensor storage offset is not an int");
  const std::int64_t offset = args[1].value.toInt();
  const auto sizes = int_tuple(args[2], "tensor size");
  const auto strides = int_tuple(args[3], "tensor stride");
  // metadata (PyTorch >= 2.0) carries flags such as conj/neg bits that plain dense
  // tensors never have; refusing it beats silently dropping a flag.
  if (args.size() == 7) {
    const auto& meta = args[6];
    bool empty = meta.kind == Item::Kind::Value &&
                 (meta.value.isNone() || (meta.value.isGenericDict() && meta.value.toGenericDict().empty()));
    if (!empty) corrupt("tensor metadata is not supported");
  }

  if (sizes.size() != strides.size()) corrupt("tensor size and stride have different lengths");
  if (offset < 0) corrupt("negative tensor storage offset");
  // The last element a view touches must lie inside the storage; checked here
  // because set_ would otherwise try to grow the storage.
  std::int64_t last = offset;
  bool empty = false;
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) corrupt("negative tensor size or stride");
    if (sizes[d] == 0) empty = true;
  }
  if (!empty) {
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      std::int64_t span = 0;
      if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &span) || __builtin_add_overflow(last, span, &last)) {
        corrupt("tensor extent overflows");
      }
    }
    if (last >= storage.numel) {
      corrupt("tensor needs element " + std::to_string(last) + " of a storage of " + std::to_string(storage.numel) +
              " elements");
    }
  }
  at::Tensor tensor = at::empty({0}, at::TensorOptions().dtype(storage.root.dtype));
  tensor.set_(storage.root.storage, storage.offset + offset, sizes, strides);
  return tensor;
}

Item Unpickler::persistent_load(Item pid) {
  if (pid.kind != Item::Kind::RawTuple) corrupt("persistent id is not a (storage, type, key, location, numel) tuple");
  const auto& e = *pid.elements;
  auto is_str = [](const Item& i) { return i.kind == Item::Kind::Value && i.value.isString(); };
  auto is_int = [](const Item& i) { return i.kind == Item::Kind::Value && i.value.isInt(); };
  if (e.size() < 5 || e.size() > 6 || !is_str(e[0]) || e[0].value.toStringRef() != "storage") {
    corrupt("persistent id is not a (storage, type, key, location, numel) tuple");
  }
  if (e[1].kind != Item::Kind::Global || e[1].callable != Callable::StorageType) {
    corrupt("persistent id names a " + describe(e[1]) + " instead of a storage type");
  }
  if (!is_str(e[2]) || !is_str(e[3]) || !is_int(e[4]) || e[4].value.toInt() < 0) {
    corrupt("malformed storage persistent id");
  }
  // The location ('cpu', 'cuda:0', ...) is ignored: everything loads to the CPU.
  StorageRequest request{e[2].value.toStringRef(), e[1].dtype, e[4].value.toInt()};
  Item item;
  item.kind = Item::Kind::Storage;
  item.storage.root = load_storage_(request);
  item.storage.numel = item.storage.root.numel;
  // Legacy files may name a view (view_key, offset, numel) of the root storage.
  if (e.size() == 6 && !(e[5].kind == Item::Kind::Value && e[5].value.isNone())) {
    if (e[5].kind != Item::Kind::Value || !e[5].value.isTuple()) corrupt("malformed storage view");
    const auto& view = e[5].value.toTupleRef().elements();
    if (view.size() != 3 || !view[1].isInt() || !view[2].isInt()) corrupt("malformed storage view");
    const std::int64_t view_offset = view[1].toInt();
    const std::int64_t view_numel = view[2].toInt();
    if (view_offset < 0 || view_numel < 0 || view_offset > item.storage.numel ||
        view_numel > item.storage.numel - view_offset) {
      corrupt("storage view outside its storage");
    }
    item.storage.offset = view_offset;
    item.storage.numel = view_numel;
  }
  return item;
}

Item Unpickler::reduce(const Item& callable, Item args_item) {
  if (callable.kind != Item::Kind::Global) corrupt("REDUCE calls a " + describe(callable));
  std::vector<Item> args;
  if (args_item.kind == Item::Kind::RawTuple) {
    args = *args_item.elements;
  } else if (args_item.kind == Item::Kind::Value && args_item.value.isTuple()) {
    for (const auto& v : args_item.value.toTupleRef().elements()) args.push_back(Item::of(v));
  } else {
    corrupt("REDUCE arguments are not a tuple");
  }
  auto value_arg = [&](std::size_t i) -> const c10::IValue& {
    if (args[i].kind != Item::Kind::Value) corrupt(callable.global_name + " got a " + describe(args[i]));
    return args[i].value;
  };

  switch (callable.callable) {
    case Callable::OrderedDict: {
      auto dict = c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
      if (args.size() > 1) corrupt("OrderedDict with " + std::to_string(args.size()) + " arguments");
      if (args.size() == 1) {  // OrderedDict([(key, value), ...])
        const auto& pairs = value_arg(0);
        if (!pairs.isList()) corrupt("OrderedDict argument is not a list");
        for (const auto& pair : pairs.toListRef()) {
          if (!pair.isTuple() && !pair.isList()) corrupt("OrderedDict item is not a pair");
          std::vector<c10::IValue> kv = pair.isTuple() ? pair.toTupleRef().elements().vec() : pair.toListRef().vec();
          if (kv.size() != 2) corrupt("OrderedDict item is not a pair");
          nest(c10::IValue(dict), Item::of(kv[0]));
          nest(c10::IValue(dict), Item::of(kv[1]));
          dict.insert_or_assign(kv[0], kv[1]);
        }
      }
      return Item::of(std::move(dict));
    }
    case Callable::RebuildTensor: return Item::of(rebuild_tensor(args, false));
    case Callable::RebuildTensorV2: return Item::of(rebuild_tensor(args, true));
    case Callable::RebuildParameter:
      // requires_grad, hooks and Python-side state have no meaning for a loaded tensor.
      if (args.size() < 3 || args.size() > 4 || !value_arg(0).isTensor()) corrupt("malformed parameter");
      return Item::of(value_arg(0));
    case Callable::Device: {
      if (args.empty() || args.size() > 2 || !value_arg(0).isString()) corrupt("malformed torch.device");
      std::string spec = value_arg(0).toStringRef();
      if (args.size() == 2) {
        if (!value_arg(1).isInt()) corrupt("malformed torch.device");
        spec += ":" + std::to_string(value_arg(1).toInt());
      }
      try {
        return Item::of(c10::Device(spec));
      } catch (const c10::Error&) {
        corrupt("invalid device '" + spec + "'");
      }
    }
    case Callable::RestoreTypeTag:
      if (args.size() != 2) corrupt("malformed restore_type_tag");
      return Item::of(value_arg(0));
    case Callable::BuildList:
      if (args.size() != 1 || !value_arg(0).isList()) corrupt("malformed " + callable.global_name);
      return Item::of(value_arg(0));
    case Callable::StorageType: break;
  }
  corrupt(callable.global_name + " cannot be called");
}

void Unpickler::append(Item& list, std::vector<Item> items) {
  if (list.kind != Item::Kind::Value || !list.value.isList()) corrupt("APPEND to a " + describe(list));
  auto l = list.value.toList();
  for (auto& item : items) {
    if (item.kind == Item::Kind::Value) nest(list.value, item);
    l.push_back(value_of(std::move(item), "stored in a list"));
  }
}

void Unpickler::set_items(Item& dict, std::vector<Item> items) {
  if (dict.kind != Item::Kind::Value || !dict.value.isGenericDict()) corrupt("SETITEM on a " + describe(dict));
  if (items.size() % 2 != 0) corrupt("SETITEMS with an odd number of items");
  auto d = dict.value.toGenericDict();
  for (std::size_t i = 0; i < items.size(); i += 2) {
    if (items[i].kind == Item::Kind::Value) nest(dict.value, items[i]);
    if (items[i + 1].kind == Item::Kind::Value) nest(dict.value, items[i + 1]);
    auto key = value_of(std::move(items[i]), "used as a dict key");
    auto value = value_of(std::move(items[i + 1]), "stored in a dict");
    d.insert_or_assign(std::move(key), std::move(value));
  }
}

c10::IValue Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    const auto op = static_cast<std::uint8_t>(take(1)[0]);
    switch (op) {
      case PROTO: {
        auto version = read_le<std::uint8_t>();
        if (version > 5) corrupt("pickle protocol " + std::to_string(version) + " is not supported");
        break;
      }
      case FRAME: read_le<std::uint64_t>(); break;  // framing only groups opcodes
      case STOP: {
        if (!marks_.empty()) corrupt("unclosed MARK at STOP");
        if (stack_.size() != 1) corrupt("STOP with " + std::to_string(stack_.size()) + " items on the stack");
        return value_of(pop(), "the pickled object");
      }
      case MARK: marks_.push_back(stack_.size()); break;
      case POP: pop(); break;
      case POP_MARK: pop_to_mark(); break;
      case DUP: {
        Item copy = top();  // not pushed by reference: push_back may reallocate
        stack_.push_back(std::move(copy));
        break;
      }
      case NONE: push(c10::IValue()); break;
      case NEWTRUE: push(true); break;
      case NEWFALSE: push(false); break;
      case BININT: push(static_cast<std::int64_t>(read_le<std::int32_t>())); break;
      case BININT1: push(static_cast<std::int64_t>(read_le<std::uint8_t>())); break;
      case BININT2: push(static_cast<std::int64_t>(read_le<std::uint16_t>())); break;
      case LONG1: push(read_long(read_le<std::uint8_t>())); break;
      case LONG4: {
        auto n = read_le<std::int32_t>();
        if (n < 0) corrupt("negative LONG4 length");
        push(read_long(static_cast<std::uint64_t>(n)));
        break;
      }
      case BINFLOAT: {  // the only big-endian field of the format
        auto bits = read_le<std::uint64_t>();
        push(std::bit_cast<double>(__builtin_bswap64(bits)));
        break;
      }
      case SHORT_BINUNICODE: push(std::string(take(read_le<std::uint8_t>()))); break;
      case BINUNICODE: push(std::string(take(read_le<std::uint32_t>()))); break;
      case BINUNICODE8: push(std::string(take(read_le<std::uint64_t>()))); break;
      // bytes have no IValue of their own; old files use them for keys and locations,
      // and Python 2 wrote every str as a BINSTRING.
      case SHORT_BINSTRING: push(std::string(take(read_le<std::uint8_t>()))); break;
      case BINSTRING: {
        auto n = read_le<std::int32_t>();
        if (n < 0) corrupt("negative BINSTRING length");
        push(std::string(take(static_cast<std::uint64_t>(n))));
        break;
      }
      case SHORT_BINBYTES: push(std::string(take(read_le<std::uint8_t>()))); break;
      case BINBYTES: push(std::string(take(read_le<std::uint32_t>()))); break;
      case BINBYTES8: push(std::string(take(read_le<std::uint64_t>()))); break;
      case EMPTY_DICT: push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get())); break;
      case EMPTY_LIST: push(c10::impl::GenericList(c10::AnyType::get())); break;
      case EMPTY_TUPLE: push(c10::ivalue::Tuple::create(std::vector<c10::IValue>{})); break;
      case TUPLE: stack_.push_back(make_tuple(pop_to_mark())); break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        std::size_t n = op - TUPLE1 + 1;
        if (stack_.size() < stack_floor() + n) corrupt("stack underflow");
        std::vector<Item> items(std::make_move_iterator(stack_.end() - static_cast<std::ptrdiff_t>(n)),
                                std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        stack_.push_back(make_tuple(std::move(items)));
        break;
      }
      case APPEND: {
        Item value = pop();
        std::vector<Item> items;
        items.push_back(std::move(value));
        append(top(), std::move(items));
        break;
      }
      case APPENDS: {
        auto items = pop_to_mark();
        append(top(), std::move(items));
        break;
      }
      case SETITEM: {
        Item value = pop();
        Item key = pop();
        std::vector<Item> items;
        items.push_back(std::move(key));
        items.push_back(std::move(value));
        set_items(top(), std::move(items));
        break;
      }
      case SETITEMS: {
        auto items = pop_to_mark();
        set_items(top(), std::move(items));
        break;
      }
      case BINPUT: memo_put(read_le<std::uint8_t>()); break;
      case LONG_BINPUT: memo_put(read_le<std::uint32_t>()); break;
      case MEMOIZE: memo_put(memo_.size()); break;
      case BINGET: memo_get(read_le<std::uint8_t>()); break;
      case LONG_BINGET: memo_get(read_le<std::uint32_t>()); break;
      case GLOBAL: {
        std::string module = read_line();
        std::string name = read_line();
        stack_.push_back(resolve_global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        Item name = pop();
        Item module = pop();
        if (name.kind != Item::Kind::Value || module.kind != Item::Kind::Value || !name.value.isString() ||
            !module.value.isString()) {
          corrupt("STACK_GLOBAL needs two strings");
        }
        stack_.push_back(resolve_global(module.value.toStringRef(), name.value.toStringRef()));
        break;
      }
      case REDUCE: {
        Item args = pop();
        Item callable = pop();
        stack_.push_back(reduce(callable, std::move(args)));
        break;
      }
      case BUILD: {
        // Only OrderedDicts get a state from torch.save (their `_metadata`, the
        // per-module version numbers); it says nothing about the tensors.
        pop();
        Item& target = top();
        if (target.kind != Item::Kind::Value || !target.value.isGenericDict()) {
          corrupt("BUILD on a " + describe(target) + " (only OrderedDict state is supported)");
        }
        break;
      }
      case BINPERSID: stack_.push_back(persistent_load(pop())); break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        corrupt(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }
}

}  // namespace

c10::IValue unpickle(std::string_view bytes, std::size_t& pos, const std::string& file,
                     const StorageLoader& load_storage) {
  Unpickler unpickler(bytes, pos, file, load_storage);
  try {
    auto value = unpickler.run();
    pos = unpickler.position();
    return value;
  } catch (const ood::Error&) {
    throw;
  } catch (const c10::Error& e) {
    fail(file, std::string("corrupt pickle: ") + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    // IValue raises this for values it cannot hold (an unhashable dict key, ...).
    fail(file, std::string("corrupt pickle: ") + e.what());
  }
}

}  // namespace ood::io::detail
