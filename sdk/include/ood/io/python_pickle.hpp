#pragma once
// A small strict reader for Python pickles of plain data, protocols 0 to 5, as written
// by Python 2's cPickle and Python 3: None, bools, ints, floats, str and bytes (Python 2
// str is read as bytes, like pickle.load(encoding="bytes") with latin-1 keys), lists,
// tuples, dicts and NumPy arrays (numpy.core.multiarray._reconstruct with a numpy.dtype,
// and numpy.core.numeric._frombuffer of protocol 5). Nothing is ever called: any other
// global is refused with its name. Used for the CIFAR batches.
#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "ood/export.hpp"

namespace ood::io {

struct PyValue;
using PyList = std::vector<PyValue>;
/// Dict keys are text (str, or bytes taken as latin-1); other keys are refused.
using PyDict = std::map<std::string, PyValue>;

struct OOD_SDK_API PyValue {
  struct None {};
  struct Bytes {
    std::string data;
  };
  struct Tuple {
    PyList items;
  };
  std::variant<None, bool, std::int64_t, double, std::string, Bytes, PyList, Tuple, PyDict, at::Tensor> value;

  bool is_none() const { return std::holds_alternative<None>(value); }
  /// Typed access; throws ood::FileError naming `what` and the actual type.
  std::int64_t as_int(const std::string& what) const;
  const std::string& as_text(const std::string& what) const;  // str or bytes
  const PyList& as_list(const std::string& what) const;       // list or tuple
  const PyDict& as_dict(const std::string& what) const;
  const at::Tensor& as_array(const std::string& what) const;  // a NumPy array
  const PyValue& at(const std::string& key, const std::string& what) const;  // dict item
  std::string type_name() const;
};

/// Parses a pickle; `name` is used in messages. Throws ood::FileError naming it.
OOD_SDK_API PyValue parse_python_pickle(const std::uint8_t* data, std::size_t size, const std::string& name);
/// Reads a pickle file (plain, or gzip-compressed).
OOD_SDK_API PyValue read_python_pickle(const std::filesystem::path& file);

}  // namespace ood::io
