#pragma once
// Internal: the two containers torch.save writes around its pickle. Both throw
// ood::FileError("<file>: <what>").
#include <ATen/core/ivalue.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace ood::io::detail {

/// torch.save's default since PyTorch 1.6 (and torch::pickle_save's format): a zip
/// archive holding `<top>/data.pkl` and one `<top>/data/<key>` record per storage.
c10::IValue load_zip_file(const std::string& file);

/// torch.save(..., _use_new_zipfile_serialization=False) and PyTorch < 1.6: pickles
/// of magic number, protocol version, system info, object, storage keys, followed by
/// the raw storages. `bytes` is the whole file.
c10::IValue load_legacy_file(const std::string& file, const std::string& bytes);

/// Writes the zip container around `pickle`: data.pkl plus `data/<i>` holding the
/// bytes of `storages[i]` (contiguous CPU tensors). `sink` must take every byte it is
/// given and report failures afterwards: the zip writer cannot recover from a short
/// write. Throws c10::Error on internal zip errors.
void write_zip(const std::function<std::size_t(const void*, std::size_t)>& sink, const std::string& pickle,
               const std::vector<at::Tensor>& storages);

/// Whether `head` (the first bytes of a file) starts like a legacy file: the pickled
/// magic number.
bool looks_like_legacy_file(const std::string& head);

}  // namespace ood::io::detail
