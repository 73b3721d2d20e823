#pragma once
// Reading and writing the files PyTorch's `torch.save` produces, without Python.
//
// LibTorch 1.13's own `torch::pickle_load` refuses `collections.OrderedDict` (every
// `model.state_dict()`) and the legacy (pre-1.6, non-zip) format in which most
// published checkpoints are stored. This reader is a small, strict pickle
// interpreter that understands exactly the opcodes and globals `torch.save` emits for
// tensors and plain containers, for both container formats:
//   * zip format: `<archive>/data.pkl` + `<archive>/data/<key>` storage records;
//   * legacy format: magic number, protocol version, system info, the pickled object,
//     the list of storage keys, then each storage's raw bytes.
// Anything else (arbitrary classes, code) is rejected with a message naming the file
// and the offending global: loading never executes anything.
#include <ATen/core/ivalue.h>

#include <filesystem>
#include <string>

#include "ood/export.hpp"
#include "ood/tensor_dict.hpp"

namespace ood::io {

/// Decodes a file written by Python's `torch.save` (zip or legacy format) or by
/// LibTorch's `torch::pickle_save`. Python values map to IValues: dict and
/// OrderedDict -> GenericDict (insertion order kept), list -> GenericList,
/// tuple -> Tuple, str -> String, int -> Int, float -> Double, bool -> Bool,
/// None -> None, tensors and nn.Parameters -> Tensor (CPU, with the stored dtype,
/// sizes, strides and storage offset; views of one storage share memory).
/// Throws ood::FileError("<file>: <what>") on any problem.
OOD_SDK_API c10::IValue load_torch_file(const std::filesystem::path& file);

/// Reads a state dict: a dict or OrderedDict mapping names to tensors, as written by
/// `torch.save(model.state_dict(), f)`. Entries that are not tensors (such as the
/// `_metadata` attribute PyTorch attaches to OrderedDicts) are not part of the
/// result. A dict that holds the state dict under the key `state_dict` (a common
/// checkpoint layout) is unwrapped. Throws ood::FileError naming the file when the
/// content is not a mapping of names to tensors.
OOD_SDK_API TensorDict load_state_dict(const std::filesystem::path& file);

/// Copies a state dict into a model, strictly, as torch's `load_state_dict(strict=True)`:
/// `own` is the model's state_dict() (tensors sharing storage with its parameters and
/// buffers), `given` the loaded one. Every entry of `own` must be in `given` with the same
/// shape (a missing "...num_batches_tracked" is accepted: checkpoints from before PyTorch
/// 0.4.1 have none) and `given` must hold nothing else; a floating entry of another dtype
/// (a half-precision checkpoint) is converted, as PyTorch's copy_ does. Otherwise nothing
/// is copied and ood::InvalidArgument lists the problems in one message, "state dict does
/// not fit <model>; 2 missing: a, b; 1 unexpected: c; 1 with another shape: d (file
/// Float [3], model Float [4])" (at most four names per list).
OOD_SDK_API void load_state_dict_strict(const TensorDict& own, const TensorDict& given, const std::string& model);

/// Writes `tensors` as a zip-format file that Python's `torch.load` returns as a
/// plain dict of tensors (loadable by `module.load_state_dict`) and that
/// load_state_dict() reads back bit for bit. The file is written to a temporary
/// name in the same directory and renamed, so a failure never leaves half a file.
OOD_SDK_API void save_tensor_dict(const std::filesystem::path& file, const TensorDict& tensors);

}  // namespace ood::io
