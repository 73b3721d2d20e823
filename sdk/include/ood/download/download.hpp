#pragma once
// Downloading one file over HTTP(S) (or file://) with libcurl, for the weights store
// and, later, datasets: resume of a partial file, retries with exponential backoff,
// SHA-256 or MD5 verification, and an atomic rename into place, so that the destination path
// either holds the whole verified file or does not exist.
//
// While downloading, the bytes go to "<destination>.part"; an interrupted download
// leaves that file, and the next call resumes it with an HTTP Range request (a server
// that ignores the range is answered by starting over).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "ood/export.hpp"

namespace ood::download {

struct DownloadOptions {
  /// Expected SHA-256 as hex: the whole digest, or a prefix of at least 8 digits (what
  /// torchvision publishes in its file names). Empty: no check.
  std::string sha256;
  /// Expected MD5 as 32 hex digits (what most datasets publish). Empty: no check.
  std::string md5;
  /// Attempts in all; transient failures (connection lost, timeouts, HTTP 5xx, 408,
  /// 429) are retried, resuming what arrived. Other HTTP errors fail at once.
  int attempts = 4;
  /// Wait before the second attempt, doubled before each further one.
  double backoff_seconds = 1.0;
  long connect_timeout_seconds = 30;
  /// A transfer slower than 1 byte/s for this long counts as lost.
  long stall_timeout_seconds = 60;
  /// Called with (bytes so far, total bytes or 0 when unknown). Empty: a progress bar
  /// on stderr when stderr is a terminal, nothing otherwise.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  /// Shown on the progress bar (default: the destination's file name).
  std::string label;
};

struct DownloadResult {
  std::string sha256;      // of the file now at the destination (hex)
  std::uint64_t bytes = 0; // its size
  bool resumed = false;    // a partial file from earlier was continued
  int attempts = 0;        // attempts made
};

/// Downloads `url` to `destination` (its folder is created). Throws ood::FileError
/// naming the URL and the destination: on a checksum mismatch (the partial file is
/// removed; both sums are named), on an HTTP error, and when every attempt failed
/// (offline), in which case the message says where to place the file by hand.
OOD_SDK_API DownloadResult download_file(const std::string& url, const std::filesystem::path& destination,
                                         const DownloadOptions& options = {});

/// SHA-256 of a file as 64 lower-case hex digits (OpenSSL's EVP interface). Throws
/// ood::FileError when it cannot be read.
OOD_SDK_API std::string sha256_of_file(const std::filesystem::path& file);

/// MD5 of a file as 32 lower-case hex digits (OpenSSL's EVP interface; MD5 only
/// because the datasets publish it). Throws ood::FileError when it cannot be read.
OOD_SDK_API std::string md5_of_file(const std::filesystem::path& file);

/// Whether `actual` (a full hex digest) matches `expected` (a full digest or a prefix of
/// at least 8 hex digits), ignoring case.
OOD_SDK_API bool sha256_matches(const std::string& actual, const std::string& expected);

}  // namespace ood::download
