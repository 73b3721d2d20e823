// A strict pickle interpreter for plain data and NumPy arrays. It runs the pickle
// machine's opcodes itself and never calls anything: the few globals it accepts
// (NumPy's reconstructors, numpy.dtype, _codecs.encode, bytearray) are recognised by
// name and rebuilt here; any other global is refused with its name.
//
// Objects live in an arena and refer to each other by pointer while the pickle runs, so
// that memoised containers mutated later (the pickler memoises a list before appending
// to it) are seen by every reference, and so that freeing a hostile, deeply nested or
// self-referencing structure never recurses. Only at STOP is the result converted to
// PyValue, with a depth limit and a budget on what the conversion may copy.
#include "ood/io/python_pickle.hpp"

#include <ATen/ATen.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "ood/error.hpp"
#include "ood/io/idx.hpp"
#include "ood/io/numpy.hpp"

namespace ood::io {

// ---- PyValue accessors ---------------------------------------------------------------

std::string PyValue::type_name() const {
  switch (value.index()) {
    case 0: return "None";
    case 1: return "bool";
    case 2: return "int";
    case 3: return "float";
    case 4: return "str";
    case 5: return "bytes";
    case 6: return "list";
    case 7: return "tuple";
    case 8: return "dict";
    case 9: return "numpy array";
  }
  return "unknown";
}

namespace {
[[noreturn]] void wrong_type(const std::string& what, const char* expected, const PyValue& v) {
  throw FileError(what + ": expected " + expected + ", got " + v.type_name());
}
}  // namespace

std::int64_t PyValue::as_int(const std::string& what) const {
  if (const auto* i = std::get_if<std::int64_t>(&value)) return *i;
  wrong_type(what, "an int", *this);
}

const std::string& PyValue::as_text(const std::string& what) const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* b = std::get_if<Bytes>(&value)) return b->data;
  wrong_type(what, "str or bytes", *this);
}

const PyList& PyValue::as_list(const std::string& what) const {
  if (const auto* l = std::get_if<PyList>(&value)) return *l;
  if (const auto* t = std::get_if<Tuple>(&value)) return t->items;
  wrong_type(what, "a list or tuple", *this);
}

const PyDict& PyValue::as_dict(const std::string& what) const {
  if (const auto* d = std::get_if<PyDict>(&value)) return *d;
  wrong_type(what, "a dict", *this);
}

const at::Tensor& PyValue::as_array(const std::string& what) const {
  if (const auto* t = std::get_if<at::Tensor>(&value)) return *t;
  wrong_type(what, "a numpy array", *this);
}

const PyValue& PyValue::at(const std::string& key, const std::string& what) const {
  const PyDict& dict = as_dict(what);
  const auto it = dict.find(key);
  if (it != dict.end()) return it->second;
  std::string keys;
  std::size_t listed = 0;
  for (const auto& [k, v] : dict) {
    if (++listed > 20) {  // enough to recognise the file; a huge dict would flood the message
      keys += ", ...";
      break;
    }
    keys += (keys.empty() ? "'" : ", '") + k + "'";
  }
  throw FileError(what + ": no key '" + key + "' (it has " + (keys.empty() ? std::string("no keys") : keys) + ")");
}

namespace {

// ---- limits --------------------------------------------------------------------------

// Values on the pickle machine's stack, open MARKs, memo entries and objects in total.
// CIFAR batches need a few thousand stack entries (protocol 1+ appends in batches of
// 1000) and up to about 150000 objects (CIFAR-100 training set); the limits keep a
// hostile file from using more than a few hundred MB of bookkeeping.
constexpr std::size_t kMaxStack = 1 << 20;
constexpr std::size_t kMaxMarks = 1 << 12;
constexpr std::size_t kMaxMemo = 1 << 22;
constexpr std::size_t kMaxObjects = 1 << 22;
// Containers nested deeper than this are refused (plain data needs a handful; a list
// that contains itself would otherwise convert forever).
constexpr int kMaxDepth = 100;
// What building and converting values may copy in total: bytes read from the input,
// arrays made from them, and the result's strings, as a multiple of the input plus a
// margin. Repeated memo references to one large string could otherwise multiply it.
constexpr std::uint64_t kBudgetInputMultiple = 4;
constexpr std::uint64_t kBudgetMargin = 64ull << 20;

// ---- objects of the pickle machine ---------------------------------------------------

enum class Global : std::uint8_t { Reconstruct, NdarrayType, DtypeType, FromBuffer, CodecsEncode, Bytearray };

struct Obj {
  enum class Kind : std::uint8_t { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Array, Global, DType, PendingArray };
  Kind kind = Kind::None;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0;
  // Str (UTF-8) and Bytes: the content. Global: "module.name". DType: the type code
  // without byte order ("u1", "f8").
  std::string text;
  // DType: the byte order character, from BUILD ('=' until then).
  char byte_order = '=';
  Global global = Global::Reconstruct;
  // List and Tuple: the items; Dict: key, value, key, value... in insertion order.
  std::vector<Obj*> items;
  at::Tensor array;
};

const char* kind_name(Obj::Kind kind) {
  switch (kind) {
    case Obj::Kind::None: return "None";
    case Obj::Kind::Bool: return "bool";
    case Obj::Kind::Int: return "int";
    case Obj::Kind::Float: return "float";
    case Obj::Kind::Str: return "str";
    case Obj::Kind::Bytes: return "bytes";
    case Obj::Kind::List: return "list";
    case Obj::Kind::Tuple: return "tuple";
    case Obj::Kind::Dict: return "dict";
    case Obj::Kind::Array: return "numpy array";
    case Obj::Kind::Global: return "global";
    case Obj::Kind::DType: return "numpy.dtype";
    case Obj::Kind::PendingArray: return "numpy array without its state (no BUILD)";
  }
  return "object";
}

// A global's name as it may appear in a message: printable ASCII, at most 120 chars.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 120)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  if (text.size() > 120) out += "...";
  return out;
}

// Appends code point `cp` to `out` as UTF-8 (surrogates too, as Python's
// "surrogatepass" does when it pickles them).
void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Latin-1 bytes as UTF-8 text (how bytes dict keys become text).
std::string latin1_to_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (const char c : bytes) append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

// Whether `text` is well-formed UTF-8 (surrogates allowed, see append_utf8).
bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (lead < 0x80) { ++i; continue; }
    if (lead >= 0xC2 && lead <= 0xDF) { extra = 1; cp = lead & 0x1F; }
    else if (lead >= 0xE0 && lead <= 0xEF) { extra = 2; cp = lead & 0x0F; }
    else if (lead >= 0xF0 && lead <= 0xF4) { extra = 3; cp = lead & 0x07; }
    else return false;
    if (i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
    i += extra + 1;
  }
  return true;
}

class Unpickler {
 public:
  Unpickler(const std::uint8_t* data, std::size_t size, const std::string& name)
      : data_(data), size_(size), name_(name), budget_(kBudgetInputMultiple * size + kBudgetMargin) {}

  PyValue run() {
    while (true) {
      opcode_at_ = pos_;
      const std::uint8_t op = read_byte("an opcode");
      if (op == '.') break;  // STOP
      execute(op);
    }
    if (!marks_.empty()) error("STOP with an open MARK");
    if (stack_.size() != 1) error("STOP with " + std::to_string(stack_.size()) + " values on the stack (expected 1)");
    if (pos_ != size_)
      fail("the pickle ends at byte " + std::to_string(pos_) + " but the input has " + std::to_string(size_ - pos_) +
           " more bytes");
    return convert(stack_.back(), 0);
  }

 private:
  // ---- errors and input ----
  [[noreturn]] void fail(const std::string& what) const { throw FileError(name_ + ": " + what); }
  [[noreturn]] void error(const std::string& what) const {
    fail("invalid or unsupported pickle: " + what + " (opcode at byte " + std::to_string(opcode_at_) + ")");
  }

  void need(std::uint64_t n, const char* what) const {
    if (n > size_ - pos_)
      error(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " +
            std::to_string(size_ - pos_) + " are left");
  }
  std::uint8_t read_byte(const char* what) {
    need(1, what);
    return data_[pos_++];
  }
  std::uint64_t read_le(std::size_t n, const char* what) {
    need(n, what);
    std::uint64_t v = 0;
    for (std::size_t b = 0; b < n; ++b) v |= std::uint64_t{data_[pos_ + b]} << (8 * b);
    pos_ += n;
    return v;
  }
  std::string_view read_bytes(std::uint64_t n, const char* what) {
    need(n, what);
    const std::string_view out(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return out;
  }
  // A protocol-0 argument: the bytes up to the next newline (consumed, not returned).
  std::string_view read_line(const char* what) {
    const void* end = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!end) error(std::string("truncated: ") + what + " has no terminating newline");
    const std::size_t length = static_cast<std::size_t>(static_cast<const std::uint8_t*>(end) - (data_ + pos_));
    const std::string_view out(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length + 1;
    return out;
  }

  void charge(std::uint64_t bytes) {
    if (bytes > budget_)
      fail("the pickle expands to more data than its size can justify (refused, over " +
           std::to_string(kBudgetInputMultiple * size_ + kBudgetMargin) + " bytes)");
    budget_ -= bytes;
  }

  // ---- objects and the stack ----
  Obj* make(Obj::Kind kind) {
    if (arena_.size() >= kMaxObjects) error("more than " + std::to_string(kMaxObjects) + " objects");
    Obj& o = arena_.emplace_back();
    o.kind = kind;
    return &o;
  }
  Obj* make_text(Obj::Kind kind, std::string_view text) {
    charge(text.size());
    Obj* o = make(kind);
    o->text.assign(text);
    return o;
  }
  Obj* make_int(std::int64_t v) {
    Obj* o = make(Obj::Kind::Int);
    o->integer = v;
    return o;
  }
  Obj* make_bool(bool v) {
    Obj* o = make(Obj::Kind::Bool);
    o->boolean = v;
    return o;
  }

  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Obj* o) {
    if (stack_.size() >= kMaxStack) error("more than " + std::to_string(kMaxStack) + " values on the stack");
    stack_.push_back(o);
  }
  Obj* pop() {
    if (stack_.size() <= floor()) error("stack underflow");
    Obj* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Obj* top() {
    if (stack_.size() <= floor()) error("stack underflow");
    return stack_.back();
  }
  std::vector<Obj*> pop_mark() {
    if (marks_.empty()) error("no MARK to pop to");
    const std::size_t start = marks_.back();
    marks_.pop_back();
    std::vector<Obj*> items(stack_.begin() + static_cast<std::ptrdiff_t>(start), stack_.end());
    stack_.resize(start);
    return items;
  }
  void expect(const Obj* o, Obj::Kind kind, const char* role) const {
    if (o->kind != kind) error(std::string(role) + " must be a " + kind_name(kind) + ", not a " + kind_name(o->kind));
  }

  // ---- memo ----
  void memo_put(std::uint64_t index) {
    Obj* value = top();
    if (memo_.size() >= kMaxMemo && !memo_.count(index)) error("more than " + std::to_string(kMaxMemo) + " memo entries");
    memo_[index] = value;
  }
  void memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) error("memo entry " + std::to_string(index) + " is not defined");
    push(it->second);
  }

  // ---- protocol-0 text arguments ----
  std::int64_t decimal(std::string_view text, const char* what) {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc::result_out_of_range) error(std::string(what) + " " + printable(text) + " does not fit 64 bits");
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
      error(std::string("invalid ") + what + " '" + printable(text) + "'");
    return v;
  }
  std::uint64_t memo_index(std::string_view text) {
    const std::int64_t v = decimal(text, "memo index");
    if (v < 0) error("negative memo index");
    return static_cast<std::uint64_t>(v);
  }

  // STRING's argument: a Python 2 repr, quoted, with backslash escapes.
  std::string unescape_string(std::string_view line) {
    if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') || line.back() != line.front())
      error("the STRING argument must be quoted");
    const std::string_view body = line.substr(1, line.size() - 2);
    std::string out;
    out.reserve(body.size());
    const auto hex_value = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (std::size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      if (c != '\\') { out += c; continue; }
      if (++i == body.size()) error("STRING ends with a lone backslash");
      const char e = body[i];
      switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': {
          const int hi = i + 1 < body.size() ? hex_value(body[i + 1]) : -1;
          const int lo = i + 2 < body.size() ? hex_value(body[i + 2]) : -1;
          if (hi < 0 || lo < 0) error("invalid \\x escape in STRING");
          out += static_cast<char>(hi * 16 + lo);
          i += 2;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int value = e - '0';
            for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
              value = value * 8 + (body[++i] - '0');
            out += static_cast<char>(value & 0xFF);
          } else {
            // Python keeps unknown escapes as they are.
            out += '\\';
            out += e;
          }
      }
    }
    return out;
  }

  // UNICODE's argument: raw-unicode-escape, i.e. Latin-1 except \uXXXX and \UXXXXXXXX
  // after an odd number of backslashes.
  std::string raw_unicode_escape(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    std::size_t i = 0;
    while (i < line.size()) {
      if (line[i] != '\\') {
        append_utf8(out, static_cast<unsigned char>(line[i++]));
        continue;
      }
      std::size_t run = 0;
      while (i < line.size() && line[i] == '\\') { ++run; ++i; }
      const bool escape = (run % 2 == 1) && i < line.size() && (line[i] == 'u' || line[i] == 'U');
      out.append(escape ? run - 1 : run, '\\');
      if (!escape) continue;
      const std::size_t digits = line[i] == 'u' ? 4 : 8;
      ++i;
      if (line.size() - i < digits) error("truncated \\u escape in UNICODE");
      std::uint32_t cp = 0;
      for (std::size_t k = 0; k < digits; ++k, ++i) {
        const char c = line[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) error("invalid \\u escape in UNICODE");
        cp = cp * 16 + static_cast<std::uint32_t>(d);
      }
      if (cp > 0x10FFFF) error("\\U escape beyond U+10FFFF in UNICODE");
      append_utf8(out, cp);
    }
    return out;
  }

  // LONG1/LONG4's argument: little-endian two's complement of any length.
  std::int64_t little_endian_long(std::string_view bytes) {
    if (bytes.empty()) return 0;
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
    const bool negative = byte(bytes.size() - 1) & 0x80;
    // Bytes beyond the eighth may only repeat the sign.
    for (std::size_t i = 8; i < bytes.size(); ++i)
      if (byte(i) != (negative ? 0xFF : 0x00)) error("integer does not fit 64 bits");
    const std::size_t n = std::min<std::size_t>(bytes.size(), 8);
    std::uint64_t v = negative ? ~std::uint64_t{0} : 0;
    for (std::size_t i = 0; i < n; ++i) {
      v &= ~(std::uint64_t{0xFF} << (8 * i));
      v |= std::uint64_t{byte(i)} << (8 * i);
    }
    // The 64-bit pattern must have the sign of the whole number.
    if (bytes.size() > 8 && (static_cast<std::int64_t>(v) < 0) != negative) error("integer does not fit 64 bits");
    return static_cast<std::int64_t>(v);
  }

  // A text argument of a call (str, or bytes taken as Latin-1).
  std::string text_of(const Obj* o, const char* role) {
    if (o->kind == Obj::Kind::Str) return o->text;
    if (o->kind == Obj::Kind::Bytes) return latin1_to_utf8(o->text);
    error(std::string(role) + " must be text, not a " + kind_name(o->kind));
  }
  // Text to Latin-1 bytes, as str.encode('latin-1') (code points above 255 fail).
  std::string utf8_to_latin1(const std::string& text, const char* role) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) { out += static_cast<char>(c); ++i; continue; }
      if ((c == 0xC2 || c == 0xC3) && i + 1 < text.size()) {
        out += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F));
        i += 2;
        continue;
      }
      error(std::string(role) + " holds a character beyond Latin-1");
    }
    return out;
  }
  std::int64_t int_of(const Obj* o, const char* role) {
    if (o->kind == Obj::Kind::Int) return o->integer;
    if (o->kind == Obj::Kind::Bool) return o->boolean ? 1 : 0;
    error(std::string(role) + " must be an int, not a " + kind_name(o->kind));
  }
  std::vector<std::int64_t> shape_of(const Obj* o) {
    if (o->kind != Obj::Kind::Tuple && o->kind != Obj::Kind::List)
      error(std::string("a numpy array's shape must be a tuple, not a ") + kind_name(o->kind));
    std::vector<std::int64_t> shape;
    for (const Obj* d : o->items) {
      shape.push_back(int_of(d, "a numpy array dimension"));
      if (shape.back() < 0) error("a numpy array has a negative dimension");
    }
    return shape;
  }
  // The bytes of a numpy array's data (bytes, or text taken as Latin-1 as NumPy does).
  std::string array_data_of(const Obj* o) {
    if (o->kind == Obj::Kind::Bytes) return o->text;
    if (o->kind == Obj::Kind::Str) return utf8_to_latin1(o->text, "a numpy array's data");
    if (o->kind == Obj::Kind::List) error("a numpy array given as a list of objects (object arrays are not supported)");
    error(std::string("a numpy array's data must be bytes, not a ") + kind_name(o->kind));
  }
  // The tensor of a numpy array; the .npy reader's conversion checks the data size
  // against the shape and applies the same dtype rules.
  at::Tensor array_from(const Obj* dtype, const std::vector<std::int64_t>& shape, bool fortran, const std::string& bytes) {
    charge(bytes.size());
    const std::string descr = std::string(1, dtype->byte_order) + dtype->text;
    return numpy_array_from_bytes(descr, shape, fortran, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                                  name_ + ": the numpy array built at byte " + std::to_string(opcode_at_));
  }

  // ---- globals, REDUCE and BUILD ----
  Obj* find_global(std::string module, const std::string& name) {
    // NumPy 2 moved numpy.core to numpy._core; its pickles name the new module.
    if (module.rfind("numpy._core", 0) == 0) module = "numpy.core" + module.substr(11);
    Global id;
    if (module == "numpy.core.multiarray" && name == "_reconstruct") id = Global::Reconstruct;
    else if (module == "numpy" && name == "ndarray") id = Global::NdarrayType;
    else if (module == "numpy" && name == "dtype") id = Global::DtypeType;
    else if (module == "numpy.core.numeric" && name == "_frombuffer") id = Global::FromBuffer;
    else if (module == "_codecs" && name == "encode") id = Global::CodecsEncode;
    else if ((module == "__builtin__" || module == "builtins") && name == "bytearray") id = Global::Bytearray;
    else
      error("refused global '" + printable(module) + "." + printable(name) +
            "' (only plain data and NumPy arrays are read; nothing is ever called)");
    Obj* o = make(Obj::Kind::Global);
    o->global = id;
    o->text = module + "." + name;
    return o;
  }

  Obj* reduce(const Obj* callable, const Obj* args) {
    expect(callable, Obj::Kind::Global, "REDUCE's callable");
    expect(args, Obj::Kind::Tuple, "REDUCE's arguments");
    const std::vector<Obj*>& a = args->items;
    const auto arity = [&](std::size_t low, std::size_t high) {
      if (a.size() < low || a.size() > high)
        error(callable->text + " called with " + std::to_string(a.size()) + " arguments");
    };
    switch (callable->global) {
      case Global::Reconstruct: {
        // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
        arity(3, 3);
        if (a[0]->kind != Obj::Kind::Global || a[0]->global != Global::NdarrayType)
          error("_reconstruct of something else than numpy.ndarray");
        return make(Obj::Kind::PendingArray);
      }
      case Global::DtypeType: {
        // dtype('u1', align, copy); the byte order comes with BUILD.
        arity(1, 3);
        std::string code = text_of(a[0], "numpy.dtype's type code");
        Obj* o = make(Obj::Kind::DType);
        if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
          o->byte_order = code[0];
          code.erase(0, 1);
        }
        if (code.empty()) error("empty numpy.dtype type code");
        if (code[0] == 'O') error("numpy.dtype '" + printable(code) + "' is an object dtype (object arrays are not supported)");
        if (code[0] == 'V') error("numpy.dtype '" + printable(code) + "' is a structured or raw dtype (not supported)");
        o->text = code;
        return o;
      }
      case Global::CodecsEncode: {
        // How Python 3 pickles bytes for protocols 0-2: encode(text, 'latin1').
        arity(1, 2);
        if (a[0]->kind != Obj::Kind::Str) error(std::string("_codecs.encode of a ") + kind_name(a[0]->kind));
        const std::string encoding = a.size() > 1 ? text_of(a[1], "the encoding") : "utf-8";
        Obj* o = make(Obj::Kind::Bytes);
        if (encoding == "latin1" || encoding == "latin-1" || encoding == "iso-8859-1" || encoding == "iso8859-1")
          o->text = utf8_to_latin1(a[0]->text, "_codecs.encode's text");
        else if (encoding == "utf-8" || encoding == "utf8")
          o->text = a[0]->text;
        else
          error("_codecs.encode with encoding '" + printable(encoding) + "' (only latin1 and utf-8)");
        charge(o->text.size());
        return o;
      }
      case Global::Bytearray: {
        // bytearray(), bytearray(b'...') or bytearray('text', 'latin-1').
        arity(0, 2);
        Obj* o = make(Obj::Kind::Bytes);
        if (a.empty()) return o;
        if (a[0]->kind == Obj::Kind::Bytes && a.size() == 1) {
          o->text = a[0]->text;
        } else if (a[0]->kind == Obj::Kind::Str && a.size() == 2) {
          const std::string encoding = text_of(a[1], "the encoding");
          if (encoding != "latin-1" && encoding != "latin1") error("bytearray with encoding '" + printable(encoding) + "'");
          o->text = utf8_to_latin1(a[0]->text, "bytearray's text");
        } else {
          error("unsupported arguments to bytearray");
        }
        charge(o->text.size());
        return o;
      }
      case Global::FromBuffer: {
        // Protocol 5: _frombuffer(buffer, dtype, shape, order), the buffer in-band.
        arity(4, 4);
        if (a[0]->kind != Obj::Kind::Bytes) error(std::string("_frombuffer of a ") + kind_name(a[0]->kind));
        expect(a[1], Obj::Kind::DType, "_frombuffer's dtype");
        const std::string order = text_of(a[3], "_frombuffer's order");
        if (order != "C" && order != "F") error("_frombuffer with order '" + printable(order) + "'");
        Obj* o = make(Obj::Kind::Array);
        o->array = array_from(a[1], shape_of(a[2]), order == "F", a[0]->text);
        return o;
      }
      case Global::NdarrayType:
        error("calling numpy.ndarray directly is not supported");
    }
    error("unsupported call");
  }

  void build(Obj* target, const Obj* state) {
    if (target->kind == Obj::Kind::DType) {
      // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
      expect(state, Obj::Kind::Tuple, "numpy.dtype's state");
      const auto& s = state->items;
      if (s.size() < 2) error("numpy.dtype state with " + std::to_string(s.size()) + " items");
      const std::string order = text_of(s[1], "numpy.dtype's byte order");
      if (order.size() != 1 || std::string_view("<>|=").find(order[0]) == std::string_view::npos)
        error("numpy.dtype byte order '" + printable(order) + "'");
      for (std::size_t i = 2; i < std::min<std::size_t>(s.size(), 5); ++i)
        if (s[i]->kind != Obj::Kind::None) error("structured or subarray numpy.dtype (not supported)");
      target->byte_order = order[0];
      return;
    }
    if (target->kind == Obj::Kind::PendingArray) {
      // ([version,] shape, dtype, is_fortran, data)
      expect(state, Obj::Kind::Tuple, "a numpy array's state");
      const auto& s = state->items;
      if (s.size() != 4 && s.size() != 5) error("numpy array state with " + std::to_string(s.size()) + " items");
      const std::size_t at = s.size() == 5 ? 1 : 0;
      const std::vector<std::int64_t> shape = shape_of(s[at]);
      expect(s[at + 1], Obj::Kind::DType, "a numpy array's dtype");
      const std::int64_t fortran = int_of(s[at + 2], "a numpy array's is_fortran flag");
      if (fortran != 0 && fortran != 1) error("a numpy array's is_fortran flag is " + std::to_string(fortran));
      // In place, so that memo references to the pending array see the result.
      target->array = array_from(s[at + 1], shape, fortran == 1, array_data_of(s[at + 3]));
      target->kind = Obj::Kind::Array;
      return;
    }
    error(std::string("BUILD on a ") + kind_name(target->kind) + " (only numpy arrays and dtypes are rebuilt)");
  }

  // ---- the opcodes ----
  void execute(std::uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const std::uint8_t version = read_byte("PROTO");
        if (version > 5) error("pickle protocol " + std::to_string(version) + " (supported: 0 to 5)");
        break;
      }
      case 0x95: {  // FRAME: only a hint for buffered readers; the length must fit.
        const std::uint64_t length = read_le(8, "FRAME");
        need(length, "FRAME");
        break;
      }
      case '(':  // MARK
        if (marks_.size() >= kMaxMarks) error("more than " + std::to_string(kMaxMarks) + " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (stack_.size() > floor()) stack_.pop_back();
        else if (!marks_.empty()) marks_.pop_back();
        else error("stack underflow");
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2':  // DUP
        push(top());
        break;

      // -- scalars --
      case 'N': push(make(Obj::Kind::None)); break;
      case 0x88: push(make_bool(true)); break;   // NEWTRUE
      case 0x89: push(make_bool(false)); break;  // NEWFALSE
      case 'I': {  // INT; Python 2 writes True/False as I01/I00
        const std::string_view line = read_line("INT");
        if (line == "01") push(make_bool(true));
        else if (line == "00") push(make_bool(false));
        else push(make_int(decimal(line, "INT")));
        break;
      }
      case 'L': {  // LONG, with Python 2's 'L' suffix
        std::string_view line = read_line("LONG");
        if (!line.empty() && line.back() == 'L') line.remove_suffix(1);
        push(make_int(decimal(line, "LONG")));
        break;
      }
      case 'J': push(make_int(static_cast<std::int32_t>(read_le(4, "BININT")))); break;
      case 'K': push(make_int(read_byte("BININT1"))); break;
      case 'M': push(make_int(static_cast<std::int64_t>(read_le(2, "BININT2")))); break;
      case 0x8a: {  // LONG1
        const std::uint8_t n = read_byte("LONG1");
        push(make_int(little_endian_long(read_bytes(n, "LONG1"))));
        break;
      }
      case 0x8b: {  // LONG4
        const auto n = static_cast<std::int32_t>(read_le(4, "LONG4"));
        if (n < 0) error("LONG4 with a negative length");
        push(make_int(little_endian_long(read_bytes(static_cast<std::uint64_t>(n), "LONG4"))));
        break;
      }
      case 'F': {  // FLOAT, as repr() writes it
        const std::string_view line = read_line("FLOAT");
        double v = 0;
        const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
        if (line.empty() || ec != std::errc() || end != line.data() + line.size())
          error("invalid FLOAT '" + printable(line) + "'");
        Obj* o = make(Obj::Kind::Float);
        o->real = v;
        push(o);
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8, "BINFLOAT");
        std::uint64_t bits = 0;
        for (int b = 0; b < 8; ++b) bits = (bits << 8) | data_[pos_ + static_cast<std::size_t>(b)];
        pos_ += 8;
        Obj* o = make(Obj::Kind::Float);
        o->real = std::bit_cast<double>(bits);
        push(o);
        break;
      }

      // -- strings: Python 2 str and Python 3 bytes are bytes, unicode/str is text --
      case 'S': push(make_text(Obj::Kind::Bytes, unescape_string(read_line("STRING")))); break;
      case 'U': push(make_text(Obj::Kind::Bytes, read_bytes(read_byte("SHORT_BINSTRING"), "SHORT_BINSTRING"))); break;
      case 'T': {
        const auto n = static_cast<std::int32_t>(read_le(4, "BINSTRING"));
        if (n < 0) error("BINSTRING with a negative length");
        push(make_text(Obj::Kind::Bytes, read_bytes(static_cast<std::uint64_t>(n), "BINSTRING")));
        break;
      }
      case 'C': push(make_text(Obj::Kind::Bytes, read_bytes(read_byte("SHORT_BINBYTES"), "SHORT_BINBYTES"))); break;
      case 'B': push(make_text(Obj::Kind::Bytes, read_bytes(read_le(4, "BINBYTES"), "BINBYTES"))); break;
      case 0x8e: push(make_text(Obj::Kind::Bytes, read_bytes(read_le(8, "BINBYTES8"), "BINBYTES8"))); break;
      case 0x96: push(make_text(Obj::Kind::Bytes, read_bytes(read_le(8, "BYTEARRAY8"), "BYTEARRAY8"))); break;
      case 'V': push(make_text(Obj::Kind::Str, raw_unicode_escape(read_line("UNICODE")))); break;
      case 'X': push(utf8_text(read_bytes(read_le(4, "BINUNICODE"), "BINUNICODE"))); break;
      case 0x8c: push(utf8_text(read_bytes(read_byte("SHORT_BINUNICODE"), "SHORT_BINUNICODE"))); break;
      case 0x8d: push(utf8_text(read_bytes(read_le(8, "BINUNICODE8"), "BINUNICODE8"))); break;

      // -- containers --
      case ']': push(make(Obj::Kind::List)); break;
      case '}': push(make(Obj::Kind::Dict)); break;
      case ')': push(make(Obj::Kind::Tuple)); break;
      case 'l': case 't': case 'd': {  // LIST, TUPLE, DICT from the items above MARK
        std::vector<Obj*> items = pop_mark();
        if (op == 'd' && items.size() % 2 != 0) error("DICT with an odd number of items");
        Obj* o = make(op == 'l' ? Obj::Kind::List : op == 't' ? Obj::Kind::Tuple : Obj::Kind::Dict);
        o->items = std::move(items);
        push(o);
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        const std::size_t n = op - 0x84u;
        if (stack_.size() < floor() + n) error("stack underflow");
        Obj* o = make(Obj::Kind::Tuple);
        o->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(o);
        break;
      }
      case 'a': {  // APPEND
        Obj* value = pop();
        Obj* list = top();
        expect(list, Obj::Kind::List, "APPEND's target");
        list->items.push_back(value);
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Obj*> values = pop_mark();
        Obj* list = top();
        expect(list, Obj::Kind::List, "APPENDS's target");
        list->items.insert(list->items.end(), values.begin(), values.end());
        break;
      }
      case 's': {  // SETITEM
        Obj* value = pop();
        Obj* key = pop();
        Obj* dict = top();
        expect(dict, Obj::Kind::Dict, "SETITEM's target");
        dict->items.push_back(key);
        dict->items.push_back(value);
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Obj*> items = pop_mark();
        if (items.size() % 2 != 0) error("SETITEMS with an odd number of items");
        Obj* dict = top();
        expect(dict, Obj::Kind::Dict, "SETITEMS's target");
        dict->items.insert(dict->items.end(), items.begin(), items.end());
        break;
      }

      // -- memo --
      case 'p': memo_put(memo_index(read_line("PUT"))); break;
      case 'q': memo_put(read_byte("BINPUT")); break;
      case 'r': memo_put(read_le(4, "LONG_BINPUT")); break;
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'g': memo_get(memo_index(read_line("GET"))); break;
      case 'h': memo_get(read_byte("BINGET")); break;
      case 'j': memo_get(read_le(4, "LONG_BINGET")); break;

      // -- globals and calls --
      case 'c': {  // GLOBAL
        const std::string module(read_line("GLOBAL"));
        const std::string name(read_line("GLOBAL"));
        push(find_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Obj* name = pop();
        Obj* module = pop();
        if (module->kind != Obj::Kind::Str || name->kind != Obj::Kind::Str) error("STACK_GLOBAL of non-str names");
        push(find_global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        Obj* args = pop();
        Obj* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD
        Obj* state = pop();
        build(top(), state);
        break;
      }

      // -- refused, with a reason --
      case 'i': case 'o': case 0x81: case 0x92:
        error("opcode creating a class instance (INST, OBJ, NEWOBJ); only plain data and NumPy arrays are read");
      case 'P': case 'Q':
        error("persistent ids (PERSID/BINPERSID), as in torch.save files, are not plain data");
      case 0x82: case 0x83: case 0x84:
        error("extension registry codes (EXT1/2/4) are not supported");
      case 0x8f: case 0x90: case 0x91:
        error("sets (EMPTY_SET, ADDITEMS, FROZENSET) are not supported");
      case 0x97: case 0x98:
        error("out-of-band buffers (NEXT_BUFFER, READONLY_BUFFER) are not supported");
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        error(std::string("unknown opcode 0x") + kHex[op >> 4] + kHex[op & 15]);
      }
    }
  }

  Obj* utf8_text(std::string_view bytes) {
    if (!valid_utf8(bytes)) error("text that is not valid UTF-8");
    return make_text(Obj::Kind::Str, bytes);
  }

  // ---- the result ----
  std::string key_of(const Obj* key) {
    if (key->kind == Obj::Kind::Str) return key->text;
    if (key->kind == Obj::Kind::Bytes) return latin1_to_utf8(key->text);
    fail(std::string("a dict key is a ") + kind_name(key->kind) + " (only str and bytes keys are supported)");
  }

  PyValue convert(const Obj* o, int depth) {
    if (depth > kMaxDepth)
      fail("values nested deeper than " + std::to_string(kMaxDepth) + " levels (or a container that contains itself)");
    charge(sizeof(PyValue) + (o->kind == Obj::Kind::Str || o->kind == Obj::Kind::Bytes ? o->text.size() : 0));
    PyValue v;
    switch (o->kind) {
      case Obj::Kind::None: break;
      case Obj::Kind::Bool: v.value = o->boolean; break;
      case Obj::Kind::Int: v.value = o->integer; break;
      case Obj::Kind::Float: v.value = o->real; break;
      case Obj::Kind::Str: v.value = o->text; break;
      case Obj::Kind::Bytes: v.value = PyValue::Bytes{o->text}; break;
      case Obj::Kind::List: {
        PyList items;
        items.reserve(o->items.size());
        for (const Obj* item : o->items) items.push_back(convert(item, depth + 1));
        v.value = std::move(items);
        break;
      }
      case Obj::Kind::Tuple: {
        PyValue::Tuple tuple;
        tuple.items.reserve(o->items.size());
        for (const Obj* item : o->items) tuple.items.push_back(convert(item, depth + 1));
        v.value = std::move(tuple);
        break;
      }
      case Obj::Kind::Dict: {
        PyDict dict;
        // Later items replace earlier ones with the same key, as in Python.
        for (std::size_t i = 0; i + 1 < o->items.size(); i += 2)
          dict.insert_or_assign(key_of(o->items[i]), convert(o->items[i + 1], depth + 1));
        v.value = std::move(dict);
        break;
      }
      case Obj::Kind::Array: v.value = o->array; break;
      case Obj::Kind::Global:
      case Obj::Kind::DType:
      case Obj::Kind::PendingArray:
        fail(std::string("the pickle's data holds a ") + kind_name(o->kind) +
             (o->kind == Obj::Kind::Global ? " (" + o->text + ")" : std::string()) +
             "; only plain data and NumPy arrays are supported");
    }
    return v;
  }

  const std::uint8_t* data_;
  std::size_t size_;
  const std::string& name_;
  std::size_t pos_ = 0;
  std::size_t opcode_at_ = 0;
  std::uint64_t budget_;
  std::deque<Obj> arena_;
  std::vector<Obj*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Obj*> memo_;
};

}  // namespace

PyValue parse_python_pickle(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size == 0) throw FileError(name + ": empty file (not a pickle)");
  return Unpickler(data, size, name).run();
}

PyValue read_python_pickle(const std::filesystem::path& file) {
  const std::vector<std::uint8_t> bytes = read_maybe_gzipped(file);
  return parse_python_pickle(bytes.data(), bytes.size(), file.string());
}

}  // namespace ood::io
