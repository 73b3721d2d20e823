#pragma once
// Miniature dataset archives for tests: written with libarchive (tar, tar.gz, tar.xz,
// zip, chosen by the file name), served from a local HTTP server on 127.0.0.1, and
// announced to the datasets through a $OOD_RESOURCES file (URL and MD5 of each), so
// that every dataset test downloads, verifies and extracts exactly as a user would.
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../download/http_server.hpp"
#include "ood/download/download.hpp"

namespace ood::test {

struct ArchiveEntry {
  enum class Type { File, Folder, Symlink, Hardlink };
  std::string name;
  std::string data;  // File: content; Symlink/Hardlink: target
  Type type = Type::File;
};

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Writes `entries` to `file`; the format follows the name (.zip/.npz, .tar, .tar.gz/.tgz,
/// .tar.xz, .tar.bz2).
inline void write_archive(const std::filesystem::path& file, const std::vector<ArchiveEntry>& entries) {
  const std::string name = file.filename().string();
  std::unique_ptr<struct archive, decltype(&archive_write_free)> a(archive_write_new(), &archive_write_free);
  if (ends_with(name, ".zip") || ends_with(name, ".npz")) {  // an .npz is a zip
    archive_write_set_format_zip(a.get());
  } else {
    archive_write_set_format_pax_restricted(a.get());
    if (ends_with(name, ".gz") || ends_with(name, ".tgz")) archive_write_add_filter_gzip(a.get());
    else if (ends_with(name, ".xz")) archive_write_add_filter_xz(a.get());
    else if (ends_with(name, ".bz2")) archive_write_add_filter_bzip2(a.get());
  }
  std::filesystem::create_directories(file.parent_path());
  if (archive_write_open_filename(a.get(), file.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("cannot write " + file.string());
  for (const auto& e : entries) {
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname(entry.get(), e.name.c_str());
    archive_entry_set_perm(entry.get(), 0644);
    switch (e.type) {
      case ArchiveEntry::Type::File:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.data.size()));
        break;
      case ArchiveEntry::Type::Folder:
        archive_entry_set_filetype(entry.get(), AE_IFDIR);
        archive_entry_set_perm(entry.get(), 0755);
        break;
      case ArchiveEntry::Type::Symlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_symlink(entry.get(), e.data.c_str());
        break;
      case ArchiveEntry::Type::Hardlink:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_hardlink(entry.get(), e.data.c_str());
        break;
    }
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK)
      throw std::runtime_error("archive entry " + e.name + ": " + archive_error_string(a.get()));
    if (e.type == ArchiveEntry::Type::File && !e.data.empty())
      archive_write_data(a.get(), e.data.data(), e.data.size());
  }
  archive_write_close(a.get());
}

/// Writes `data` gzip-compressed (a lone .gz file, as MNIST's downloads).
inline void write_gzip(const std::filesystem::path& file, const std::string& data) {
  std::unique_ptr<struct archive, decltype(&archive_write_free)> a(archive_write_new(), &archive_write_free);
  archive_write_set_format_raw(a.get());
  archive_write_add_filter_gzip(a.get());
  std::filesystem::create_directories(file.parent_path());
  if (archive_write_open_filename(a.get(), file.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("cannot write " + file.string());
  std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), &archive_entry_free);
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_pathname(e.get(), "data");
  archive_write_header(a.get(), e.get());
  archive_write_data(a.get(), data.data(), data.size());
  archive_write_close(a.get());
}

/// The files (and folders) under `base`/`top`, as archive entries named relative to
/// `base`, sorted.
inline std::vector<ArchiveEntry> tree_entries(const std::filesystem::path& base, const std::string& top) {
  std::vector<ArchiveEntry> out;
  std::vector<std::filesystem::path> paths;
  if (std::filesystem::is_regular_file(base / top)) paths.push_back(base / top);
  else
    for (const auto& e : std::filesystem::recursive_directory_iterator(base / top)) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    ArchiveEntry entry;
    entry.name = std::filesystem::relative(p, base).string();
    if (std::filesystem::is_directory(p)) {
      entry.type = ArchiveEntry::Type::Folder;
    } else {
      std::ifstream in(p, std::ios::binary);
      entry.data.assign(std::istreambuf_iterator<char>(in), {});
    }
    out.push_back(std::move(entry));
  }
  return out;
}

/// Sets an environment variable for the life of the object.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnvironment() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

/// Serves files on 127.0.0.1 and points $OOD_RESOURCES at them (with their MD5s) for
/// the life of the object. Requests are counted per file.
class ServedResources {
 public:
  explicit ServedResources(const std::filesystem::path& work) : work_(work) {
    std::filesystem::create_directories(work_);
    overrides_ = work_ / "resources.json";
    write_overrides();
    env_.emplace("OOD_RESOURCES", overrides_.string());
  }
  /// Serves `file` under its file name (or `name`); its MD5 goes into the overrides
  /// unless `md5` is given (e.g. a wrong one, to test the mismatch).
  void serve(const std::filesystem::path& file, std::string name = {}, std::optional<std::string> md5 = {}) {
    if (name.empty()) name = file.filename().string();
    std::ifstream in(file, std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), {});
    const std::string path = "/files/" + name;
    auto counter = std::make_shared<std::atomic<int>>(0);  // read by the test, written by the server thread
    requests_[name] = counter;
    server_.route(path, [counter, body](const TestHttpServer::Request&, int) {
      ++*counter;
      return TestHttpServer::Response(200, body);
    });
    entries_[name] = {{"url", server_.url(path)}, {"md5", md5 ? *md5 : download::md5_of_file(file)}};
    write_overrides();
  }
  int requests(const std::string& name) const {
    auto it = requests_.find(name);
    return it == requests_.end() ? 0 : it->second->load();
  }
  const std::filesystem::path& overrides_file() const { return overrides_; }

 private:
  void write_overrides() { std::ofstream(overrides_) << entries_.dump(2); }

  std::filesystem::path work_, overrides_;
  TestHttpServer server_;
  nlohmann::json entries_ = nlohmann::json::object();
  std::map<std::string, std::shared_ptr<std::atomic<int>>> requests_;
  std::optional<ScopedEnvironment> env_;
};

}  // namespace ood::test
