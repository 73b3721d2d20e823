#include "ood/download/download.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "ood/error.hpp"
#include "ood/log.hpp"

namespace ood::download {
namespace {

namespace fs = std::filesystem;

// curl_global_init is not thread-safe; do it once for the process.
void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string megabytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

// A text progress bar on stderr, redrawn at most 10 times a second.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total) return;
    last_ = now;
    drawn_ = true;
    if (total > 0) {
      const int width = 30;
      const int filled = static_cast<int>(width * std::min(1.0, static_cast<double>(done) / total));
      std::fprintf(stderr, "\r%s [%s%s] %3d%% %s / %s", label_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), static_cast<int>(100.0 * done / total),
                   megabytes(done).c_str(), megabytes(total).c_str());
    } else {
      std::fprintf(stderr, "\r%s %s", label_.c_str(), megabytes(done).c_str());
    }
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

// State shared with curl's callbacks during one attempt.
struct Transfer {
  CURL* curl = nullptr;
  std::FILE* file = nullptr;
  fs::path part;
  std::uint64_t offset = 0;      // bytes of the partial file before this attempt
  std::uint64_t written = 0;     // bytes written in this attempt
  bool checked_status = false;   // the response code was looked at (first body bytes)
  bool restarted = false;        // a 200 answered our range: the partial file was dropped
  bool write_error = false;
  long status = 0;
  const std::function<void(std::uint64_t, std::uint64_t)>* progress = nullptr;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (!t.checked_status) {
    t.checked_status = true;
    curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
    // A server that ignores the Range header sends the whole file with 200.
    if (t.offset > 0 && t.status == 200) {
      std::fclose(t.file);
      t.file = std::fopen(t.part.c_str(), "wb");
      t.offset = 0;
      t.restarted = true;
      if (!t.file) {
        t.write_error = true;
        return 0;
      }
    }
  }
  // Error pages (4xx, 5xx, a 416 for a complete partial file) are not file content.
  if (t.status != 200 && t.status != 206 && t.status != 0) return n;
  if (std::fwrite(data, 1, n, t.file) != n) {
    t.write_error = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t.written += n;
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto& t = *static_cast<Transfer*>(user);
  if (t.progress && *t.progress && (t.status == 0 || t.status == 200 || t.status == 206))
    (*t.progress)(t.offset + static_cast<std::uint64_t>(now), total > 0 ? t.offset + static_cast<std::uint64_t>(total) : 0);
  return 0;
}

enum class Outcome { Done, Transient, Offline, Permanent };

std::string by_hand(const std::string& url, const fs::path& destination, const std::string& sha256,
                    const std::string& md5) {
  return " To use the file without network access, download " + url + " elsewhere and place it at " +
         destination.string() +
         (sha256.empty() ? "" : (sha256.size() < 64 ? " (its sha256 must start with " : " (its sha256 must be ") + sha256 + ")") +
         (md5.empty() ? "" : " (its md5 must be " + lower(md5) + ")") + ".";
}

}  // namespace

namespace {

std::string digest_of_file(const fs::path& file, const EVP_MD* algorithm, const char* name) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FileError(file.string() + ": cannot be read to compute its " + name);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), algorithm, nullptr) != 1)
    throw Error(std::string(name) + ": OpenSSL could not initialise a digest");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw FileError(file.string() + ": read error while computing its " + name);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string sha256_of_file(const fs::path& file) { return digest_of_file(file, EVP_sha256(), "sha256"); }

std::string md5_of_file(const fs::path& file) { return digest_of_file(file, EVP_md5(), "md5"); }

bool sha256_matches(const std::string& actual, const std::string& expected) {
  if (expected.size() < 8 || expected.size() > actual.size()) return false;
  return lower(actual).compare(0, expected.size(), lower(expected)) == 0;
}

DownloadResult download_file(const std::string& url, const fs::path& destination, const DownloadOptions& options) {
  init_curl();
  if (!options.sha256.empty() &&
      (options.sha256.size() < 8 || options.sha256.size() > 64 ||
       options.sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
    throw InvalidArgument("download " + url + ": expected sha256 '" + options.sha256 +
                          "' is not 8 to 64 hex digits");
  if (!options.md5.empty() &&
      (options.md5.size() != 32 || options.md5.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
    throw InvalidArgument("download " + url + ": expected md5 '" + options.md5 + "' is not 32 hex digits");
  std::error_code ec;
  if (!destination.parent_path().empty()) fs::create_directories(destination.parent_path(), ec);
  if (ec) throw FileError(destination.parent_path().string() + ": cannot create the folder: " + ec.message());
  const fs::path part = destination.string() + ".part";
  const std::string manual = by_hand(url, destination, options.sha256, options.md5);

  ProgressBar bar(options.label.empty() ? destination.filename().string() : options.label);
  const std::function<void(std::uint64_t, std::uint64_t)> progress =
      options.progress ? options.progress
                       : std::function<void(std::uint64_t, std::uint64_t)>(
                             [&bar](std::uint64_t d, std::uint64_t t) { bar.update(d, t); });

  DownloadResult result;
  std::string last_error;
  Outcome outcome = Outcome::Transient;
  const int attempts = std::max(1, options.attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      const double wait = options.backoff_seconds * std::pow(2.0, attempt - 2);
      ood::log::warn("download " + url + ": " + last_error + "; attempt " + std::to_string(attempt) + " of " +
                     std::to_string(attempts) + " in " + std::to_string(wait).substr(0, 4) + " s");
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    result.attempts = attempt;
    Transfer t;
    t.part = part;
    t.offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
    if (ec) t.offset = 0;
    if (t.offset > 0) result.resumed = true;
    t.file = std::fopen(part.c_str(), "ab");
    if (!t.file) throw FileError(part.string() + ": cannot be written");
    t.progress = &progress;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    t.curl = curl.get();
    char curl_error[CURL_ERROR_SIZE] = {0};
    const std::string range = std::to_string(t.offset) + "-";
    const std::string agent = std::string("ood/") + OOD_VERSION;
    curl_easy_setopt(t.curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(t.curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(t.curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(t.curl, CURLOPT_USERAGENT, agent.c_str());
    curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_seconds);
    curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
    // CURLOPT_RANGE rather than RESUME_FROM: libcurl then leaves a 200 answer to us
    // (start over) instead of failing the transfer.
    if (t.offset > 0) curl_easy_setopt(t.curl, CURLOPT_RANGE, range.c_str());
    const CURLcode rc = curl_easy_perform(t.curl);
    curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
    const bool closed_ok = std::fclose(t.file) == 0;
    t.file = nullptr;
    const bool is_file_url = url.rfind("file:", 0) == 0;
    if (t.write_error || !closed_ok) throw FileError(part.string() + ": write failed (disk full?)");
    if (rc == CURLE_OK && (t.status == 200 || t.status == 206 || (is_file_url && t.status == 0))) {
      outcome = Outcome::Done;
      break;
    }
    if (rc == CURLE_OK && t.status == 416 && t.offset > 0) {
      // The partial file already holds everything (the checksum decides below).
      outcome = Outcome::Done;
      break;
    }
    if (rc == CURLE_OK) {
      last_error = "HTTP " + std::to_string(t.status);
      const bool retry = t.status >= 500 || t.status == 408 || t.status == 429;
      outcome = retry ? Outcome::Transient : Outcome::Permanent;
      if (!retry) break;
      continue;
    }
    last_error = std::string(curl_easy_strerror(rc)) + (curl_error[0] ? std::string(" (") + curl_error + ")" : "");
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_CONNECT) {
      outcome = Outcome::Offline;
    } else if (rc == CURLE_FILE_COULDNT_READ_FILE || rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
               rc == CURLE_REMOTE_FILE_NOT_FOUND || rc == CURLE_TOO_MANY_REDIRECTS) {
      outcome = Outcome::Permanent;
      break;
    } else {
      outcome = Outcome::Transient;  // connection lost, timeout, TLS hiccup: resume
    }
  }

  if (outcome != Outcome::Done) {
    std::string what = "cannot download " + url + " to " + destination.string() + ": " + last_error;
    if (outcome == Outcome::Offline) what += " (no network access?)";
    if (outcome != Outcome::Permanent) what += " after " + std::to_string(result.attempts) + " attempts";
    if (fs::exists(part, ec) && fs::file_size(part, ec) > 0)
      what += "; the part that arrived is kept in " + part.string() + " and the next attempt resumes it";
    else
      fs::remove(part, ec);
    throw FileError(what + "." + manual);
  }

  result.sha256 = sha256_of_file(part);
  result.bytes = fs::file_size(part, ec);
  if (!options.sha256.empty() && !sha256_matches(result.sha256, options.sha256)) {
    fs::remove(part, ec);
    throw FileError("downloaded " + url + " but its sha256 is " + result.sha256 + ", expected " + lower(options.sha256) +
                    "; the file was removed (a corrupt transfer, or the publisher changed the file)." + manual);
  }
  if (!options.md5.empty()) {
    const std::string md5 = md5_of_file(part);
    if (md5 != lower(options.md5)) {
      fs::remove(part, ec);
      throw FileError("downloaded " + url + " but its md5 is " + md5 + ", expected " + lower(options.md5) +
                      "; the file was removed (a corrupt transfer, or the publisher changed the file)." + manual);
    }
  }
  fs::rename(part, destination, ec);
  if (ec) throw FileError(destination.string() + ": cannot move the download into place: " + ec.message());
  return result;
}

}  // namespace ood::download
