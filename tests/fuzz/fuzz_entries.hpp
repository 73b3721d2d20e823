#pragma once
// The entry functions of the fuzz targets. libFuzzer calls them from
// tests/fuzz/fuzz_<target>.cpp (tools/dev.sh fuzz); the normal test run replays every
// corpus and crash file through the same functions (tests/unit/test_fuzz_replay.cpp),
// so a crash once found stays fixed without libFuzzer. Each returns 0 and lets
// nothing escape but a crash: a clear ood::Error is the expected outcome of bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ood::fuzz {

/// Pipeline text -> parse_json_text -> parse_pipeline against a registry whose
/// components mirror the shipped plugins' schemas (no plugin is loaded).
int pipeline(const std::uint8_t* data, std::size_t size);
/// Bytes as a PyTorch file (zip or legacy) -> load_torch_file and load_state_dict.
int torch_file(const std::uint8_t* data, std::size_t size);
/// Bytes as an IDX file, plain or gzip -> parse_idx and read_idx.
int idx(const std::uint8_t* data, std::size_t size);
/// Bytes as an archive -> extract_archive (size-limited), list/read members, decompress_file.
int archive(const std::uint8_t* data, std::size_t size);
/// Bytes as an image (JPEG, PNG, anything) -> decode_image in every mode.
int image(const std::uint8_t* data, std::size_t size);
/// Bytes as .npy -> parse_npy; as .npz -> npz_keys and read_npz of each key.
int numpy(const std::uint8_t* data, std::size_t size);
/// Bytes as a Python pickle -> parse_python_pickle.
int pickle(const std::uint8_t* data, std::size_t size);
/// Bytes as a MATLAB file -> read_mat_variable (libmatio).
int mat(const std::uint8_t* data, std::size_t size);

/// The targets by name, as the folders under tests/fuzz/corpus and tests/fuzz/crashes.
struct Target {
  const char* name;
  int (*run)(const std::uint8_t*, std::size_t);
};
const std::vector<Target>& targets();

}  // namespace ood::fuzz
