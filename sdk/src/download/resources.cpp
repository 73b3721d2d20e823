// Preparing a dataset root from its resources: use what is there, else download, verify
// and extract, else say exactly what is missing and where it comes from.
#include "ood/download/resources.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "ood/error.hpp"
#include "ood/io/archive.hpp"
#include "ood/log.hpp"

namespace ood::download {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_hex(const std::string& s) { return s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos; }

// The overrides of $OOD_RESOURCES, or an empty object when it is not set.
nlohmann::json override_file(std::string& name) {
  const char* env = std::getenv("OOD_RESOURCES");
  if (!env || !*env) return nlohmann::json::object();
  name = env;
  std::ifstream in(name);
  if (!in) throw FileError(name + " ($OOD_RESOURCES): cannot be read");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(name + " ($OOD_RESOURCES): not valid JSON: " + e.what());
  }
  if (!doc.is_object())
    throw FileError(name + " ($OOD_RESOURCES): expected an object {\"<file name>\": {\"url\": ..., \"md5\"|\"sha256\": ...}}");
  return doc;
}

// An advisory lock on the root, so that two processes preparing the same dataset do not
// write the same files at once (the second waits, then finds the work done).
class RootLock {
 public:
  explicit RootLock(const fs::path& root) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec) throw FileError(root.string() + ": cannot create the dataset folder: " + ec.message());
    fd_ = ::open((root / ".ood-prepare.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~RootLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  RootLock(const RootLock&) = delete;
  RootLock& operator=(const RootLock&) = delete;

 private:
  int fd_ = -1;
};

bool all_exist(const fs::path& root, const std::vector<std::string>& paths) {
  std::error_code ec;
  return std::all_of(paths.begin(), paths.end(), [&](const std::string& p) { return fs::exists(root / p, ec); });
}

// The expected paths that do not exist, joined for a message.
std::string missing_paths(const fs::path& root, const std::vector<std::string>& expected) {
  std::string missing;
  std::error_code ec;
  for (const auto& p : expected) {
    if (fs::exists(root / p, ec)) continue;
    if (!missing.empty()) missing += ", ";
    missing += (root / p).string();
  }
  return missing;
}

std::string checksum_text(const Resource& r) {
  if (!r.md5.empty()) return "md5 " + lower(r.md5);
  if (!r.sha256.empty()) return "sha256 " + lower(r.sha256);
  return "no published checksum";
}

// Whether the file matches the resource's checksums (true when it has none); `actual`
// receives what was found, for messages.
bool checksum_ok(const fs::path& file, const Resource& r, std::string& actual) {
  if (!r.md5.empty()) {
    actual = "md5 " + md5_of_file(file);
    if (actual != "md5 " + lower(r.md5)) return false;
  }
  if (!r.sha256.empty()) {
    const std::string sha = sha256_of_file(file);
    actual = "sha256 " + sha;
    if (!sha256_matches(sha, r.sha256)) return false;
  }
  return true;
}

std::string where_from(const Resource& r, const fs::path& root) {
  const fs::path into = root / r.folder;
  std::string s = "  " + r.file_name;
  if (!r.urls.empty()) {
    s += " from " + r.urls.front();
    for (std::size_t i = 1; i < r.urls.size(); ++i) s += " (or " + r.urls[i] + ")";
  }
  s += " (" + checksum_text(r) + ") into " + into.string();
  if (r.unpack == Resource::Unpack::Extract) s += ", extracted there";
  if (r.unpack == Resource::Unpack::Decompress) s += ", decompressed there";
  if (!r.manual.empty()) s += "; " + r.manual;
  return s;
}

// The archive of `r` under root, downloaded (from each mirror in turn) unless a copy with
// the right checksum is already there.
fs::path obtain(const fs::path& root, const Resource& r, const std::string& dataset, const DownloadOptions& options) {
  const fs::path file = root / r.folder / r.file_name;
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) {
    std::string actual;
    if (checksum_ok(file, r, actual)) return file;
    if (r.urls.empty())
      throw FileError(dataset + ": " + file.string() + " has " + actual + ", expected " + checksum_text(r) +
                      " (a corrupt or different file); " + r.manual);
    log::warn(dataset + ": " + file.string() + " has " + actual + ", expected " + checksum_text(r) +
              "; downloading it again");
    fs::remove(file, ec);
  }
  if (r.urls.empty())
    throw FileError(dataset + ": " + file.string() + " is missing and cannot be downloaded automatically: " + r.manual);
  DownloadOptions o = options;
  o.md5 = r.md5;
  o.sha256 = r.sha256;
  if (o.label.empty()) o.label = dataset + ": " + r.file_name;
  std::string errors;
  for (const auto& url : r.urls) {
    try {
      download_file(url, file, o);
      return file;
    } catch (const FileError& e) {
      if (r.urls.size() == 1) throw FileError(dataset + ": " + e.what());
      log::warn(dataset + ": " + e.what());
      errors += std::string("\n  ") + e.what();
    }
  }
  throw FileError(dataset + ": every mirror of " + r.file_name + " failed:" + errors);
}

// "train-images-idx3-ubyte.gz" -> "train-images-idx3-ubyte".
std::string without_compression_suffix(const std::string& name) {
  for (const char* suffix : {".gz", ".bz2", ".xz", ".zst", ".lzma", ".Z"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
      return name.substr(0, name.size() - s.size());
  }
  return name + ".out";
}

}  // namespace

Resource with_overrides(Resource resource) {
  std::string file;
  const nlohmann::json doc = override_file(file);
  const auto it = doc.find(resource.file_name);
  if (it == doc.end()) return resource;
  const std::string where = file + " ($OOD_RESOURCES), entry \"" + resource.file_name + "\"";
  if (!it->is_object()) throw FileError(where + ": expected an object with \"url\" and \"md5\" or \"sha256\"");
  for (const auto& [key, value] : it->items()) {
    if (key != "url" && key != "md5" && key != "sha256")
      throw FileError(where + ": unknown field \"" + key + "\" (known: url, md5, sha256)");
    if (!value.is_string()) throw FileError(where + ": \"" + key + "\" must be a string");
  }
  if (it->contains("url")) resource.urls = {it->at("url").get<std::string>()};
  if (it->contains("md5") || it->contains("sha256")) {
    resource.md5 = it->value("md5", "");
    resource.sha256 = it->value("sha256", "");
    if (!resource.md5.empty() && (resource.md5.size() != 32 || !is_hex(resource.md5)))
      throw FileError(where + ": \"md5\" must be 32 hex digits");
    if (!resource.sha256.empty() && (resource.sha256.size() < 8 || resource.sha256.size() > 64 || !is_hex(resource.sha256)))
      throw FileError(where + ": \"sha256\" must be 8 to 64 hex digits");
  }
  return resource;
}

bool is_prepared(const fs::path& root, const DataSource& source) { return all_exist(root, source.expected); }

void prepare(const fs::path& root, const DataSource& source, bool download, const DownloadOptions& options) {
  if (is_prepared(root, source)) return;
  std::vector<Resource> resources;
  for (const auto& r : source.resources) resources.push_back(with_overrides(r));

  std::error_code ec;
  if (!download) {
    std::string from;
    for (const auto& r : resources) {
      from += '\n';
      from += where_from(r, root);
    }
    throw FileError(source.dataset + ": data not found: missing " + missing_paths(root, source.expected) +
                    ". Set \"download\": true (or run `ood data fetch " + source.dataset + " --root " +
                    root.string() + "`), or place the files yourself:" + from);
  }

  RootLock lock(root);
  if (is_prepared(root, source)) return;  // another process did it while we waited
  for (const auto& r : resources) {
    if (!r.provides.empty() && all_exist(root, r.provides)) continue;
    const fs::path file = obtain(root, r, source.dataset, options);
    const fs::path into = root / (r.extract_to.empty() ? r.folder : r.extract_to);
    try {
      if (r.unpack == Resource::Unpack::Extract) {
        log::info(source.dataset + ": extracting " + file.string() + " into " + into.string());
        io::extract_archive(file, into);
      } else if (r.unpack == Resource::Unpack::Decompress) {
        io::decompress_file(file, into / without_compression_suffix(r.file_name));
      }
    } catch (const FileError& e) {
      // A verified archive is the published one: keep it. One without a checksum may
      // be a broken transfer: remove it, so that the next attempt downloads it again.
      if (r.md5.empty() && r.sha256.empty()) {
        fs::remove(file, ec);
        throw FileError(source.dataset + ": " + e.what() + " (the archive, which has no checksum to verify, was removed)");
      }
      throw FileError(source.dataset + ": " + e.what());
    }
  }
  if (!is_prepared(root, source)) {
    throw FileError(source.dataset + ": after downloading and unpacking, " + missing_paths(root, source.expected) +
                    " is still missing: the archive does not have the expected layout (a changed upstream "
                    "archive, or a wrong $OOD_RESOURCES entry)");
  }
}

}  // namespace ood::download
