// Dataset resources (ood/download/resources.hpp): prepare() against a local HTTP server
// through $OOD_RESOURCES; reuse of trees and archives; the messages of every failure.
#include <fstream>

#include "miniature_archives.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using download::DataSource;
using download::Resource;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no ood::Error)";
}

// A dataset "toy" made of one tar.gz holding toy-data/{a,b}.txt, with a built-in URL
// nobody serves (port 9 on 127.0.0.1) and a wrong built-in MD5: only the overrides work.
DataSource toy_source() {
  Resource r;
  r.file_name = "toy.tar.gz";
  r.urls = {"http://127.0.0.1:9/toy.tar.gz"};
  r.md5 = "00000000000000000000000000000000";
  DataSource s;
  s.dataset = "toy";
  s.resources = {r};
  s.expected = {"toy-data/a.txt", "toy-data/b.txt"};
  return s;
}

fs::path make_toy_archive(const fs::path& dir) {
  write_archive(dir / "toy.tar.gz", {{"toy-data/a.txt", "a"}, {"toy-data/b.txt", "b"}});
  return dir / "toy.tar.gz";
}

download::DownloadOptions quiet() {
  download::DownloadOptions o;
  o.progress = [](std::uint64_t, std::uint64_t) {};
  o.attempts = 1;
  return o;
}

TEST(Resources, DownloadsVerifiesExtractsThenReusesTheTree) {
  const fs::path dir = temp_dir("resources_flow");
  ServedResources served(dir / "server");
  served.serve(make_toy_archive(dir / "src"));
  const fs::path root = dir / "root";
  download::prepare(root, toy_source(), true, quiet());
  EXPECT_TRUE(fs::exists(root / "toy-data/a.txt"));
  EXPECT_TRUE(fs::exists(root / "toy.tar.gz"));  // kept, as torchvision does
  EXPECT_EQ(served.requests("toy.tar.gz"), 1);
  // Prepared: nothing is downloaded or extracted again, with or without the archive.
  fs::remove(root / "toy.tar.gz");
  download::prepare(root, toy_source(), true, quiet());
  download::prepare(root, toy_source(), false, quiet());
  EXPECT_EQ(served.requests("toy.tar.gz"), 1);
  // A missing file of the tree: the archive is fetched again and extracted.
  fs::remove(root / "toy-data/b.txt");
  download::prepare(root, toy_source(), true, quiet());
  EXPECT_TRUE(fs::exists(root / "toy-data/b.txt"));
  EXPECT_EQ(served.requests("toy.tar.gz"), 2);
}

TEST(Resources, AnArchiveAlreadyInTheRootIsVerifiedAndUsed) {
  const fs::path dir = temp_dir("resources_local_archive");
  ServedResources served(dir / "server");
  const fs::path archive = make_toy_archive(dir / "src");
  served.serve(archive);
  const fs::path root = dir / "root";
  fs::create_directories(root);
  fs::copy_file(archive, root / "toy.tar.gz");
  download::prepare(root, toy_source(), true, quiet());
  EXPECT_EQ(served.requests("toy.tar.gz"), 0);
  EXPECT_TRUE(fs::exists(root / "toy-data/b.txt"));
  // A corrupt local copy is replaced by a download.
  fs::remove_all(root / "toy-data");
  std::ofstream(root / "toy.tar.gz") << "garbage";
  download::prepare(root, toy_source(), true, quiet());
  EXPECT_EQ(served.requests("toy.tar.gz"), 1);
  EXPECT_TRUE(fs::exists(root / "toy-data/a.txt"));
}

TEST(Resources, WithoutDownloadTheMessageNamesMissingFilesAndUrl) {
  const fs::path dir = temp_dir("resources_missing");
  const std::string message = error_of([&] { download::prepare(dir / "root", toy_source(), false); });
  EXPECT_NE(message.find("toy: data not found"), std::string::npos) << message;
  EXPECT_NE(message.find((dir / "root/toy-data/a.txt").string()), std::string::npos) << message;
  EXPECT_NE(message.find("http://127.0.0.1:9/toy.tar.gz"), std::string::npos) << message;
  EXPECT_NE(message.find("md5 00000000000000000000000000000000"), std::string::npos) << message;
  EXPECT_NE(message.find("ood data fetch toy --root"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir / "root"));  // nothing created
}

TEST(Resources, ChecksumMismatchIsAnErrorAndLeavesNothing) {
  const fs::path dir = temp_dir("resources_mismatch");
  ServedResources served(dir / "server");
  served.serve(make_toy_archive(dir / "src"), "", std::string(32, 'a'));
  const fs::path root = dir / "root";
  const std::string message = error_of([&] { download::prepare(root, toy_source(), true, quiet()); });
  EXPECT_NE(message.find("md5"), std::string::npos) << message;
  EXPECT_NE(message.find(std::string(32, 'a')), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(root / "toy.tar.gz"));
  EXPECT_FALSE(fs::exists(root / "toy.tar.gz.part"));
  EXPECT_FALSE(fs::exists(root / "toy-data"));
}

TEST(Resources, TruncatedOrHostileArchivesLeaveNoTree) {
  const fs::path dir = temp_dir("resources_bad_archive");
  // Truncated, but with the MD5 of the truncated bytes (a publisher's broken file).
  make_toy_archive(dir / "src");
  std::ifstream in(dir / "src/toy.tar.gz", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir / "src/cut.tar.gz", std::ios::binary).write(bytes.data(), 40);
  {
    ServedResources served(dir / "server1");
    served.serve(dir / "src/cut.tar.gz", "toy.tar.gz");
    const std::string message = error_of([&] { download::prepare(dir / "root1", toy_source(), true, quiet()); });
    EXPECT_NE(message.find("toy: "), std::string::npos) << message;
    EXPECT_NE(message.find("toy.tar.gz"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(dir / "root1/toy-data"));
  }
  {
    write_archive(dir / "src/evil.tar.gz", {{"toy-data/a.txt", "a"}, {"../escaped.txt", "x"}});
    ServedResources served(dir / "server2");
    served.serve(dir / "src/evil.tar.gz", "toy.tar.gz");
    const std::string message = error_of([&] { download::prepare(dir / "root2", toy_source(), true, quiet()); });
    EXPECT_NE(message.find("contains '..'"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(dir / "root2/toy-data"));
    EXPECT_FALSE(fs::exists(dir / "escaped.txt"));
  }
  {
    // An archive of the wrong layout: the message says what is still missing.
    write_archive(dir / "src/other.tar.gz", {{"elsewhere/a.txt", "a"}});
    ServedResources served(dir / "server3");
    served.serve(dir / "src/other.tar.gz", "toy.tar.gz");
    const std::string message = error_of([&] { download::prepare(dir / "root3", toy_source(), true, quiet()); });
    EXPECT_NE(message.find("still missing"), std::string::npos) << message;
  }
}

TEST(Resources, OverridesAreValidated) {
  const fs::path dir = temp_dir("resources_overrides");
  const auto with_file = [&](const std::string& content) {
    std::ofstream(dir / "o.json") << content;
    ScopedEnvironment env("OOD_RESOURCES", (dir / "o.json").string());
    return error_of([] { download::with_overrides(toy_source().resources.front()); });
  };
  EXPECT_NE(with_file("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(with_file("[]").find("expected an object"), std::string::npos);
  EXPECT_NE(with_file(R"({"toy.tar.gz": {"uri": "x"}})").find("unknown field \"uri\""), std::string::npos);
  EXPECT_NE(with_file(R"({"toy.tar.gz": {"md5": "abc"}})").find("32 hex digits"), std::string::npos);
  EXPECT_NE(with_file(R"({"toy.tar.gz": {"url": 3}})").find("must be a string"), std::string::npos);
  // Another file's entry does not touch this one; a sha256 replaces the built-in md5.
  std::ofstream(dir / "o.json") << R"({"other.zip": {"url": "x"}, "toy.tar.gz": {"sha256": "0123456789abcdef"}})";
  ScopedEnvironment env("OOD_RESOURCES", (dir / "o.json").string());
  const Resource r = download::with_overrides(toy_source().resources.front());
  EXPECT_EQ(r.urls.front(), "http://127.0.0.1:9/toy.tar.gz");
  EXPECT_EQ(r.md5, "");
  EXPECT_EQ(r.sha256, "0123456789abcdef");
}

TEST(Resources, FilesThatCannotBeDownloadedSayWhatToDo) {
  const fs::path dir = temp_dir("resources_manual");
  DataSource s;
  s.dataset = "imagenet";
  Resource r;
  r.file_name = "ILSVRC2012_img_val.tar";
  r.manual = "download it from image-net.org after registering";
  s.resources = {r};
  s.expected = {"val"};
  const std::string message = error_of([&] { download::prepare(dir / "root", s, true, quiet()); });
  EXPECT_NE(message.find("cannot be downloaded automatically"), std::string::npos) << message;
  EXPECT_NE(message.find("image-net.org"), std::string::npos) << message;
}

TEST(Resources, Md5IsTheStandardDigest) {
  const fs::path dir = temp_dir("resources_md5");
  std::ofstream(dir / "abc") << "abc";
  EXPECT_EQ(download::md5_of_file(dir / "abc"), "900150983cd24fb0d6963f7d28e17f72");
}

}  // namespace
}  // namespace ood::test
