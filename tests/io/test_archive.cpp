// Archive extraction (ood/io/archive.hpp): formats, hostile entries, truncation,
// decompression of lone files, member reads.
#include <fstream>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "ood/io/archive.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using Type = ArchiveEntry::Type;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Every entry left in `dir` (recursively), for "nothing was written" checks.
std::vector<std::string> contents(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const FileError& e) {
    return e.what();
  }
  return "(no ood::FileError)";
}

const std::vector<ArchiveEntry> kTree = {
    {"data", "", Type::Folder},
    {"data/a.txt", "alpha"},
    {"data/sub/b.bin", std::string("\0\1\2", 3)},
    {"data/link", "sub/b.bin", Type::Symlink},
    {"data/copy", "data/a.txt", Type::Hardlink},
};

TEST(Archive, ExtractsEveryFormatDetectedByContent) {
  for (const char* name : {"t.tar", "t.tar.gz", "t.tar.xz", "t.tar.bz2", "t.zip"}) {
    SCOPED_TRACE(name);
    const fs::path dir = temp_dir(std::string("archive_formats_") + name);
    std::vector<ArchiveEntry> entries = kTree;
    if (std::string(name) == "t.zip") entries.pop_back();  // zip has no hard links
    write_archive(dir / name, entries);
    // A misleading name: the content decides.
    fs::rename(dir / name, dir / "download.bin");
    const auto stats = io::extract_archive(dir / "download.bin", dir / "out");
    EXPECT_EQ(read_text(dir / "out/data/a.txt"), "alpha");
    EXPECT_EQ(read_text(dir / "out/data/sub/b.bin"), std::string("\0\1\2", 3));
    EXPECT_EQ(read_text(dir / "out/data/link"), std::string("\0\1\2", 3));
    if (std::string(name) != "t.zip") {
      EXPECT_EQ(read_text(dir / "out/data/copy"), "alpha");
    }
    EXPECT_GE(stats.files, 2u);
    EXPECT_EQ(stats.bytes, 8u);
    // No staging folder is left behind.
    EXPECT_EQ(contents(dir / "out").front(), "data");
    for (const auto& c : contents(dir / "out")) EXPECT_EQ(c.find(".ood-extract"), std::string::npos) << c;
  }
}

TEST(Archive, MergesIntoExistingFoldersAndReplacesFiles) {
  const fs::path dir = temp_dir("archive_merge");
  fs::create_directories(dir / "out/data/sub");
  std::ofstream(dir / "out/data/other.txt") << "from another archive";
  std::ofstream(dir / "out/data/a.txt") << "old";
  std::ofstream(dir / "out/keep.txt") << "k";
  write_archive(dir / "t.tar", kTree);
  io::extract_archive(dir / "t.tar", dir / "out");
  EXPECT_EQ(read_text(dir / "out/data/a.txt"), "alpha");                  // replaced
  EXPECT_EQ(read_text(dir / "out/data/other.txt"), "from another archive");  // merged, kept
  EXPECT_EQ(read_text(dir / "out/data/sub/b.bin"), std::string("\0\1\2", 3));
  EXPECT_TRUE(fs::exists(dir / "out/keep.txt"));
}

TEST(Archive, HostileEntriesAreRefusedAndNothingIsExtracted) {
  const std::vector<std::pair<std::string, ArchiveEntry>> cases = {
      {"contains '..'", {"data/../../evil.txt", "x"}},
      {"absolute path", {"/tmp/ood-evil.txt", "x"}},
      {"points outside", {"data/up", "../../..", Type::Symlink}},
      {"points outside", {"data/abs", "/etc/passwd", Type::Symlink}},
      {"contains '..'", {"data/hl", "../outside", Type::Hardlink}},
      {"does not name a file extracted before", {"data/hl", "data/later.txt", Type::Hardlink}},
  };
  for (const auto& [expected, bad] : cases) {
    SCOPED_TRACE(bad.name);
    const fs::path dir = temp_dir("archive_hostile");
    fs::remove_all(dir);
    fs::create_directories(dir / "out");
    std::vector<ArchiveEntry> entries = {{"data/a.txt", "alpha"}, bad, {"data/z.txt", "zeta"}};
    write_archive(dir / "bad.tar", entries);
    const std::string message = error_of([&] { io::extract_archive(dir / "bad.tar", dir / "out"); });
    EXPECT_NE(message.find((dir / "bad.tar").string()), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_TRUE(contents(dir / "out").empty()) << "left: " << contents(dir / "out").front();
    EXPECT_FALSE(fs::exists("/tmp/ood-evil.txt"));
  }
}

TEST(Archive, WritingThroughALinkAndChainedLinksAreRefused) {
  const fs::path dir = temp_dir("archive_through_link");
  // "data/l" -> "." is inside; writing "data/l/x" goes through a link: refused.
  write_archive(dir / "through.tar", {{"data/l", ".", Type::Symlink}, {"data/l/x", "x"}});
  EXPECT_NE(error_of([&] { io::extract_archive(dir / "through.tar", dir / "out1"); }).find("through a symbolic link"),
            std::string::npos);
  // "data/c" -> ".." is the root (inside), "data/d" -> "c/.." looks inside but resolves
  // to the root's parent.
  write_archive(dir / "chain.tar", {{"data/c", "..", Type::Symlink}, {"data/d", "c/..", Type::Symlink}});
  EXPECT_NE(error_of([&] { io::extract_archive(dir / "chain.tar", dir / "out2"); }).find("outside"), std::string::npos);
  EXPECT_TRUE(contents(dir / "out2").empty());
}

TEST(Archive, TruncatedAndCorruptArchivesAreErrorsLeavingNothing) {
  const fs::path dir = temp_dir("archive_truncated");
  std::vector<ArchiveEntry> big = {{"data/a.bin", std::string(200000, 'a')}, {"data/b.bin", std::string(200000, 'b')}};
  for (auto& e : big)
    for (std::size_t i = 0; i < e.data.size(); i += 7) e.data[i] = static_cast<char>(i * 31);  // not too compressible
  for (const char* name : {"big.tar.gz", "big.tar", "big.zip"}) {
    SCOPED_TRACE(name);
    write_archive(dir / name, big);
    const std::string whole = read_text(dir / name);
    std::ofstream(dir / name, std::ios::binary).write(whole.data(), static_cast<std::streamsize>(whole.size() * 2 / 3));
    fs::create_directories(dir / "out");
    const std::string message = error_of([&] { io::extract_archive(dir / name, dir / "out"); });
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_TRUE(contents(dir / "out").empty());
  }
  std::ofstream(dir / "junk.tar.gz") << "this is not an archive at all";
  EXPECT_NE(error_of([&] { io::extract_archive(dir / "junk.tar.gz", dir / "out"); }).find("not a readable archive"),
            std::string::npos);
  EXPECT_NE(error_of([&] { io::extract_archive(dir / "absent.tar", dir / "out"); }).find("archive not found"),
            std::string::npos);
}

TEST(Archive, SizeLimitStopsDecompressionBombs) {
  const fs::path dir = temp_dir("archive_bomb");
  write_archive(dir / "bomb.tar.gz", {{"data/zeros", std::string(1 << 20, '\0')}});
  io::ExtractLimits limits;
  limits.max_bytes = 1000;
  const std::string message = error_of([&] { io::extract_archive(dir / "bomb.tar.gz", dir / "out", limits); });
  EXPECT_NE(message.find("limit"), std::string::npos) << message;
  EXPECT_TRUE(contents(dir / "out").empty());
}

TEST(Archive, DecompressesLoneFiles) {
  const fs::path dir = temp_dir("archive_lone");
  const std::string payload(5000, 'q');
  {
    std::unique_ptr<struct archive, decltype(&archive_write_free)> a(archive_write_new(), &archive_write_free);
    archive_write_set_format_raw(a.get());
    archive_write_add_filter_gzip(a.get());
    archive_write_open_filename(a.get(), (dir / "f.gz").c_str());
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), &archive_entry_free);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_pathname(e.get(), "f");
    archive_write_header(a.get(), e.get());
    archive_write_data(a.get(), payload.data(), payload.size());
    archive_write_close(a.get());
  }
  io::decompress_file(dir / "f.gz", dir / "out/f");
  EXPECT_EQ(read_text(dir / "out/f"), payload);
  std::ofstream(dir / "plain") << "not compressed";
  EXPECT_NE(error_of([&] { io::decompress_file(dir / "plain", dir / "out/p"); }).find("not a compressed file"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "out/p"));
  EXPECT_FALSE(fs::exists(dir / "out/p.part"));
}

TEST(Archive, ListsAndReadsMembers) {
  const fs::path dir = temp_dir("archive_members");
  write_archive(dir / "m.zip", {{"x.npy", "xx"}, {"d/", "", Type::Folder}, {"d/y.npy", "yyy"}});
  EXPECT_EQ(io::list_archive(dir / "m.zip"), (std::vector<std::string>{"x.npy", "d/y.npy"}));
  const auto y = io::read_archive_member(dir / "m.zip", "d/y.npy");
  EXPECT_EQ(std::string(y.begin(), y.end()), "yyy");
  EXPECT_NE(error_of([&] { io::read_archive_member(dir / "m.zip", "z.npy"); }).find("has no file 'z.npy'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { io::read_archive_member(dir / "m.zip", "d/y.npy", 2); }).find("limit"), std::string::npos);
}

}  // namespace
}  // namespace ood::test
