#pragma once
// Python 2 cPickle (protocol 2) bytes of CIFAR-like batches, written opcode by opcode the
// way Python 2's cPickle and NumPy 1.x write them: str keys and the array's raw bytes as
// SHORT_BINSTRING/BINSTRING, the array as numpy.core.multiarray._reconstruct + BUILD with
// a numpy.dtype('u1') state. No Python 2 exists here to write real ones, and the tests
// must not need Python at run time.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ood::test {

class Python2Pickle {
 public:
  Python2Pickle() { out_ = "\x80\x02"; }  // PROTO 2
  Python2Pickle& str(const std::string& s) {
    if (s.size() < 256) {
      out_ += 'U';
      out_ += static_cast<char>(s.size());
    } else {
      out_ += 'T';
      le32(static_cast<std::uint32_t>(s.size()));
    }
    out_ += s;
    return *this;
  }
  Python2Pickle& integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      out_ += static_cast<char>(v);
    } else {
      out_ += 'J';
      le32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
    }
    return *this;
  }
  Python2Pickle& op(char c) {
    out_ += c;
    return *this;
  }
  Python2Pickle& global(const std::string& module, const std::string& name) {
    out_ += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  /// A uint8 NumPy array of `shape` holding `data`, as NumPy 1.x pickles it.
  Python2Pickle& uint8_array(const std::vector<std::int64_t>& shape, const std::string& data) {
    global("numpy.core.multiarray", "_reconstruct");
    global("numpy", "ndarray");
    op('(').integer(0).op('t');  // (0,)
    str("b");
    op('\x87').op('R');          // TUPLE3, REDUCE: _reconstruct(ndarray, (0,), 'b')
    op('(').integer(1);          // state: (1, shape, dtype, is_fortran, raw)
    op('(');
    for (auto d : shape) integer(d);
    op('t');
    global("numpy", "dtype").str("u1").integer(0).integer(1).op('\x87').op('R');
    op('(').integer(3).str("|").op('N').op('N').op('N').integer(-1).integer(-1).integer(0).op('t').op('b');
    op('\x89');  // NEWFALSE
    str(data);
    op('t').op('b');
    return *this;
  }
  /// The finished pickle (STOP appended).
  std::string bytes() const { return out_ + '.'; }

 private:
  void le32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

/// A CIFAR batch: {"batch_label": ..., label_key: [labels], "data": uint8 [N, 3072],
/// "filenames": [...]}; `pixels` holds N * 3072 bytes.
inline std::string cifar_batch(const std::string& label_key, const std::vector<int>& labels, const std::string& pixels) {
  Python2Pickle p;
  p.op('}').op('(');  // EMPTY_DICT, MARK
  p.str("batch_label").str("training batch 1 of 5");
  p.str(label_key).op(']').op('(');
  for (int l : labels) p.integer(l);
  p.op('e');  // APPENDS
  p.str("data").uint8_array({static_cast<std::int64_t>(labels.size()), 3072}, pixels);
  p.str("filenames").op(']').op('(');
  for (std::size_t i = 0; i < labels.size(); ++i) p.str("image_" + std::to_string(i) + ".png");
  p.op('e');
  p.op('u');  // SETITEMS
  return p.bytes();
}

/// A meta file: {key: [names...]}.
inline std::string name_list(const std::string& key, const std::vector<std::string>& names) {
  Python2Pickle p;
  p.op('}').op('(').str(key).op(']').op('(');
  for (const auto& n : names) p.str(n);
  p.op('e').op('u');
  return p.bytes();
}

}  // namespace ood::test
