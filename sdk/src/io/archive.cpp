// Archive extraction with libarchive. Entries are written by this file rather than by
// archive_write_disk, so that every path decision is made here, where it can be named
// in the error: an entry path must be relative and free of "..", links must point inside
// the tree, nothing is written through a link, and only files, folders and links exist.
// Everything goes to a staging folder first; the tree appears in the destination only
// after the whole archive was read, so a truncated or hostile archive leaves nothing that
// could be taken for a dataset.
#include "ood/io/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "ood/error.hpp"

namespace ood::io {
namespace {

namespace fs = std::filesystem;

using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_read_free)>;

[[noreturn]] void fail(const fs::path& archive, const std::string& what) {
  throw FileError(archive.string() + ": " + what);
}

std::string libarchive_error(struct archive* a) {
  const char* message = archive_error_string(a);
  return message ? message : "unknown libarchive error";
}

// A reader of `file` for real archives (every format but "raw", every filter).
ArchivePtr open_archive(const fs::path& file) {
  ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) fail(file, "libarchive could not allocate a reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) fail(file, "archive not found");
    fail(file, "not a readable archive: " + libarchive_error(a.get()));
  }
  return a;
}

// The next header; false at the end. Warnings are accepted (libarchive reports e.g.
// unknown extended attributes as warnings); errors name the entry before.
bool next_entry(struct archive* a, struct archive_entry** entry, const fs::path& file, const std::string& previous) {
  const int rc = archive_read_next_header(a, entry);
  if (rc == ARCHIVE_EOF) return false;
  if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN) return true;
  fail(file, "corrupt or truncated archive" + (previous.empty() ? std::string() : " after entry '" + previous + "'") +
                 ": " + libarchive_error(a));
}

std::string entry_name(struct archive_entry* entry) {
  const char* utf8 = archive_entry_pathname_utf8(entry);
  if (utf8) return utf8;
  const char* raw = archive_entry_pathname(entry);
  return raw ? raw : "";
}

// The entry path as a relative path with "." components and trailing slashes removed.
// Throws naming the entry for an absolute path, a ".." component or an empty name.
fs::path safe_relative(const std::string& name, const fs::path& archive, const char* what = "entry") {
  if (name.empty()) fail(archive, std::string("an ") + what + " has an empty path");
  if (name.find('\0') != std::string::npos) fail(archive, std::string(what) + " path contains a NUL byte");
  if (name.front() == '/' || name.front() == '\\')
    fail(archive, std::string(what) + " '" + name + "' has an absolute path; refused (it would be written outside the destination)");
  fs::path out;
  for (const auto& part : fs::path(name)) {
    const std::string p = part.string();
    if (p.empty() || p == ".") continue;
    if (p == "..")
      fail(archive, std::string(what) + " '" + name + "' contains '..'; refused (it would be written outside the destination)");
    out /= part;
  }
  if (out.empty()) fail(archive, std::string(what) + " '" + name + "' names no file");
  return out;
}

// Whether `relative` under `root` passes through a symbolic link (writing there would
// land wherever the link points).
bool passes_through_link(const fs::path& root, const fs::path& relative) {
  fs::path at = root;
  std::error_code ec;
  for (const auto& part : relative.parent_path()) {
    at /= part;
    if (fs::is_symlink(fs::symlink_status(at, ec))) return true;
  }
  return false;
}

// Whether `inner` (lexically normal) lies inside `outer` (lexically normal).
bool is_within(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

// A staging folder beside the destination's entries, removed unless released.
class Staging {
 public:
  Staging(const fs::path& destination, const fs::path& archive) {
    std::error_code ec;
    fs::create_directories(destination, ec);
    if (ec) fail(archive, "cannot create the destination " + destination.string() + ": " + ec.message());
    const std::string prefix = ".ood-extract-" + archive.filename().string() + "-";
    // A staging folder of an earlier, killed run of the same archive is stale.
    for (const auto& e : fs::directory_iterator(destination, ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path(), ec);
    path_ = destination / (prefix + std::to_string(::getpid()));
    fs::remove_all(path_, ec);
    fs::create_directory(path_, ec);
    if (ec) fail(archive, "cannot create the staging folder " + path_.string() + ": " + ec.message());
  }
  ~Staging() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_entry_data(struct archive* a, const fs::path& target, const fs::path& archive, const std::string& name,
                      std::uint64_t& total, const ExtractLimits& limits) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::fopen(target.c_str(), "wb"), &std::fclose);
  if (!out) fail(archive, "cannot write entry '" + name + "' to " + target.string());
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    const int rc = archive_read_data_block(a, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      fail(archive, "corrupt or truncated data in entry '" + name + "': " + libarchive_error(a));
    // Counted as written (holes of sparse files are not): the limit guards the disk.
    total += size;
    if (total > limits.max_bytes)
      fail(archive, "entry '" + name + "' makes the extracted data larger than the limit of " +
                        std::to_string(limits.max_bytes) + " bytes; refused");
    if (offset < 0 || offset > static_cast<la_int64_t>(limits.max_bytes))
      fail(archive, "entry '" + name + "' has a bad data offset");
    // Blocks come in order; a jump is a sparse file's hole.
    if (std::fseek(out.get(), static_cast<long>(offset), SEEK_SET) != 0)
      fail(archive, "cannot seek in " + target.string());
    if (size > 0 && std::fwrite(block, 1, size, out.get()) != size)
      fail(archive, "cannot write " + target.string() + " (disk full?)");
  }
  if (std::fflush(out.get()) != 0) fail(archive, "cannot write " + target.string() + " (disk full?)");
}

// Moves every entry of `from` into `to`: a folder into an existing folder of the same
// name is merged entry by entry; anything else replaces what is there.
void move_into(const fs::path& from, const fs::path& to, const fs::path& archive) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(from, ec)) {
    const fs::path target = to / e.path().filename();
    const bool both_folders = fs::is_directory(fs::symlink_status(e.path(), ec)) &&
                              fs::is_directory(fs::symlink_status(target, ec));
    if (both_folders) {
      move_into(e.path(), target, archive);
      continue;
    }
    fs::remove_all(target, ec);
    fs::rename(e.path(), target, ec);
    if (ec) fail(archive, "cannot move '" + e.path().filename().string() + "' into " + to.string() + ": " + ec.message());
  }
  if (ec) fail(archive, "cannot list the staging folder " + from.string() + ": " + ec.message());
}

}  // namespace

ExtractStats extract_archive(const fs::path& archive, const fs::path& destination, const ExtractLimits& limits) {
  ArchivePtr a = open_archive(archive);
  Staging staging(destination, archive);
  const fs::path root = staging.path();
  ExtractStats stats;
  std::vector<fs::path> links;  // relative paths of the symbolic links made
  struct archive_entry* entry = nullptr;
  std::string previous;
  std::uint64_t entries = 0;
  while (next_entry(a.get(), &entry, archive, previous)) {
    const std::string name = entry_name(entry);
    previous = name;
    if (++entries > limits.max_entries)
      fail(archive, "more than " + std::to_string(limits.max_entries) + " entries; refused");
    const fs::path relative = safe_relative(name, archive);
    const fs::path target = root / relative;
    if (passes_through_link(root, relative))
      fail(archive, "entry '" + name + "' would be written through a symbolic link of the archive; refused");
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(archive, "cannot create the folder for entry '" + name + "': " + ec.message());

    if (const char* hardlink = archive_entry_hardlink(entry)) {
      const fs::path source = safe_relative(hardlink, archive, "hard link target");
      if (passes_through_link(root, source) || !fs::is_regular_file(fs::symlink_status(root / source, ec)))
        fail(archive, "hard link '" + name + "' -> '" + hardlink + "' does not name a file extracted before it; refused");
      fs::remove(target, ec);
      fs::copy_file(root / source, target, ec);  // a copy: the tree must not depend on link semantics
      if (ec) fail(archive, "cannot create hard link '" + name + "': " + ec.message());
      ++stats.files;
      continue;
    }
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR:
        fs::create_directories(target, ec);
        if (ec) fail(archive, "cannot create folder '" + name + "': " + ec.message());
        break;
      case AE_IFREG:
        if (fs::is_directory(fs::symlink_status(target, ec)))
          fail(archive, "entry '" + name + "' is a file where the archive made a folder");
        fs::remove(target, ec);
        write_entry_data(a.get(), target, archive, name, stats.bytes, limits);
        ++stats.files;
        break;
      case AE_IFLNK: {
        const char* link = archive_entry_symlink(entry);
        const std::string to = link ? link : "";
        if (to.empty() || to.front() == '/')
          fail(archive, "symbolic link '" + name + "' -> '" + to + "' points outside the destination; refused");
        const fs::path resolved = (relative.parent_path() / to).lexically_normal();
        if (resolved.empty() || *resolved.begin() == ".." || resolved.is_absolute())
          fail(archive, "symbolic link '" + name + "' -> '" + to + "' points outside the destination; refused");
        fs::remove(target, ec);
        fs::create_symlink(to, target, ec);
        if (ec) fail(archive, "cannot create symbolic link '" + name + "': " + ec.message());
        links.push_back(relative);
        break;
      }
      default:
        fail(archive, "entry '" + name + "' is a device, FIFO or socket; refused");
    }
  }
  // Links pointing at links could still leave the tree once resolved: resolve each now.
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  for (const auto& link : links) {
    const fs::path resolved = fs::weakly_canonical(root / link, ec);
    if (ec || !is_within(canonical_root, resolved))
      fail(archive, "symbolic link '" + link.string() + "' resolves outside the destination; refused");
  }
  // Move the tree into place: folders merge into existing ones (several archives of a
  // dataset may share a top-level folder), files and links replace older ones.
  move_into(root, destination, archive);
  return stats;
}

void decompress_file(const fs::path& compressed, const fs::path& destination, const ExtractLimits& limits) {
  ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) fail(compressed, "libarchive could not allocate a reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), compressed.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::error_code ec;
    if (!fs::is_regular_file(compressed, ec)) fail(compressed, "file not found");
    fail(compressed, "cannot be read: " + libarchive_error(a.get()));
  }
  struct archive_entry* entry = nullptr;
  if (!next_entry(a.get(), &entry, compressed, "")) fail(compressed, "empty compressed file");
  if (archive_filter_count(a.get()) < 2) fail(compressed, "not a compressed file (gzip, bzip2, xz, zstd, ...)");
  std::error_code ec;
  if (!destination.parent_path().empty()) fs::create_directories(destination.parent_path(), ec);
  const fs::path part = destination.string() + ".part";
  std::uint64_t total = 0;
  try {
    write_entry_data(a.get(), part, compressed, destination.filename().string(), total, limits);
  } catch (...) {
    fs::remove(part, ec);
    throw;
  }
  fs::rename(part, destination, ec);
  if (ec) {
    fs::remove(part, ec);
    fail(compressed, "cannot move the decompressed file to " + destination.string());
  }
}

std::vector<std::string> list_archive(const fs::path& archive) {
  ArchivePtr a = open_archive(archive);
  std::vector<std::string> names;
  struct archive_entry* entry = nullptr;
  std::string previous;
  while (next_entry(a.get(), &entry, archive, previous)) {
    previous = entry_name(entry);
    if (archive_entry_filetype(entry) == AE_IFREG && !archive_entry_hardlink(entry)) names.push_back(previous);
  }
  return names;
}

std::vector<std::uint8_t> read_archive_member(const fs::path& archive, const std::string& member,
                                              std::uint64_t max_bytes) {
  ArchivePtr a = open_archive(archive);
  struct archive_entry* entry = nullptr;
  std::string previous;
  while (next_entry(a.get(), &entry, archive, previous)) {
    previous = entry_name(entry);
    if (previous != member || archive_entry_filetype(entry) != AE_IFREG) continue;
    std::vector<std::uint8_t> data;
    if (archive_entry_size_is_set(entry)) {
      const la_int64_t size = archive_entry_size(entry);
      if (size < 0 || static_cast<std::uint64_t>(size) > max_bytes)
        fail(archive, "member '" + member + "' is larger than the limit of " + std::to_string(max_bytes) + " bytes");
      data.reserve(static_cast<std::size_t>(size));
    }
    std::uint8_t buf[1 << 16];
    for (;;) {
      const la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) fail(archive, "corrupt or truncated data in member '" + member + "': " + libarchive_error(a.get()));
      if (data.size() + static_cast<std::size_t>(n) > max_bytes)
        fail(archive, "member '" + member + "' is larger than the limit of " + std::to_string(max_bytes) + " bytes");
      data.insert(data.end(), buf, buf + n);
    }
    return data;
  }
  fail(archive, "has no file '" + member + "'");
}

}  // namespace ood::io
