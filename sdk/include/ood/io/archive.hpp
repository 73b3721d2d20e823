#pragma once
// Archives with libarchive: tar (plain, gzip, bzip2, xz, zstd), zip, 7z and the rest of
// what libarchive reads, detected by content. Extraction is safe against hostile
// archives: an entry whose path is absolute, contains "..", or is a link (symbolic or
// hard) pointing outside the destination is refused, as are devices and FIFOs, and the
// whole extraction fails: nothing half-extracted is left to be taken for valid data.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ood/export.hpp"

namespace ood::io {

struct ExtractStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

struct ExtractLimits {
  /// Refuse archives that would write more than this (decompression bombs).
  std::uint64_t max_bytes = 1ULL << 40;
  std::uint64_t max_entries = 50'000'000;
};

/// Extracts `archive` into `destination` (created when missing). Entries go first into
/// a staging folder beside it and are moved into place only after the whole archive
/// was read without error: folders merge into existing folders of the same name
/// (several archives of a dataset may share one), files replace existing files.
/// Throws ood::FileError naming the archive and the entry.
OOD_SDK_API ExtractStats extract_archive(const std::filesystem::path& archive, const std::filesystem::path& destination,
                                         const ExtractLimits& limits = {});

/// Decompresses a lone compressed file (.gz, .bz2, .xz, ...) to `destination`
/// (written to a temporary name, then renamed). Throws ood::FileError.
OOD_SDK_API void decompress_file(const std::filesystem::path& compressed, const std::filesystem::path& destination,
                                 const ExtractLimits& limits = {});

/// The names of the regular files in an archive, in archive order.
OOD_SDK_API std::vector<std::string> list_archive(const std::filesystem::path& archive);

/// The content of one regular file of an archive (exact name). Throws ood::FileError
/// naming the archive when it is missing or corrupt, or larger than `max_bytes`.
OOD_SDK_API std::vector<std::uint8_t> read_archive_member(const std::filesystem::path& archive,
                                                          const std::string& member,
                                                          std::uint64_t max_bytes = 1ULL << 34);

}  // namespace ood::io
