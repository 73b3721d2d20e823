// The downloader and the weights store, against a local HTTP server on 127.0.0.1:
// checksum match and mismatch, a transfer cut short then resumed, server errors,
// redirects, offline; the registry and its user overrides; models taking registry names;
// `ood weights list/fetch`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "http_server.hpp"
#include "ood/download/download.hpp"
#include "ood/download/weights.hpp"
#include "ood/error.hpp"
#include "test_support.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using download::DownloadOptions;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

std::string sha256_of(const std::string& bytes) {
  const fs::path tmp = temp_dir("sha") / "x";
  std::ofstream(tmp, std::ios::binary) << bytes;
  return download::sha256_of_file(tmp);
}

DownloadOptions fast(const std::string& sha256 = "") {
  DownloadOptions o;
  o.sha256 = sha256;
  o.attempts = 3;
  o.backoff_seconds = 0.01;  // tests need not wait; the doubling is the same
  o.progress = [](std::uint64_t, std::uint64_t) {};
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(Download, Sha256IsTheStandardDigest) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(sha256_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(download::sha256_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "BA7816BF"));
  EXPECT_FALSE(download::sha256_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "ba7816b"));
  EXPECT_FALSE(download::sha256_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "ba7816bf9"));
}

TEST(Download, ChecksumMatchPutsTheFileInPlace) {
  TestHttpServer server;
  const std::string body = random_bytes(300000, 1);
  server.route("/w.bin", [&](auto&, int) { return TestHttpServer::Response{200, body}; });
  const fs::path dest = temp_dir("dl_ok") / "sub" / "w.bin";
  std::vector<std::uint64_t> progress;
  DownloadOptions options = fast(sha256_of(body));
  options.progress = [&](std::uint64_t done, std::uint64_t) { progress.push_back(done); };
  const auto result = download::download_file(server.url("/w.bin"), dest, options);
  EXPECT_EQ(read_text(dest), body);
  EXPECT_FALSE(fs::exists(dest.string() + ".part"));
  EXPECT_EQ(result.sha256, sha256_of(body));
  EXPECT_EQ(result.bytes, body.size());
  EXPECT_EQ(result.attempts, 1);
  EXPECT_FALSE(result.resumed);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), body.size());
}

TEST(Download, ChecksumMismatchRemovesTheFileAndNamesBothSums) {
  TestHttpServer server;
  const std::string body = random_bytes(5000, 2);
  server.route("/w.bin", [&](auto&, int) { return TestHttpServer::Response{200, body}; });
  const fs::path dest = temp_dir("dl_mismatch") / "w.bin";
  const std::string wrong(64, 'a');
  const std::string msg = error_of([&] { download::download_file(server.url("/w.bin"), dest, fast(wrong)); });
  EXPECT_CONTAINS(msg, "its sha256 is " + sha256_of(body));
  EXPECT_CONTAINS(msg, "expected " + wrong);
  EXPECT_CONTAINS(msg, "the file was removed");
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_FALSE(fs::exists(dest.string() + ".part"));
}

TEST(Download, TruncatedTransferIsResumedWithARangeRequest) {
  TestHttpServer server;
  const std::string body = random_bytes(200000, 3);
  // The first answer stops after 70000 bytes; later ones serve the range asked for.
  server.route("/w.bin", [&](auto&, int call) {
    TestHttpServer::Response r{200, body};
    if (call == 1) r.cut_after = 70000;
    return r;
  });
  const fs::path dest = temp_dir("dl_resume") / "w.bin";
  const auto result = download::download_file(server.url("/w.bin"), dest, fast(sha256_of(body)));
  EXPECT_EQ(read_text(dest), body);
  EXPECT_EQ(result.attempts, 2);
  EXPECT_TRUE(result.resumed);
  const auto requests = server.requests("/w.bin");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(requests[0].range_start.has_value());
  ASSERT_TRUE(requests[1].range_start.has_value());
  EXPECT_EQ(*requests[1].range_start, 70000u);
}

TEST(Download, PartialFileOfAnEarlierRunIsResumedOrRestarted) {
  TestHttpServer server;
  const std::string body = random_bytes(50000, 4);
  server.route("/range.bin", [&](auto&, int) { return TestHttpServer::Response{200, body}; });
  server.route("/norange.bin", [&](auto&, int) {
    TestHttpServer::Response r{200, body};
    r.honour_range = false;  // answers a range request with the whole file
    return r;
  });
  for (const std::string path : {"/range.bin", "/norange.bin"}) {
    SCOPED_TRACE(path);
    const fs::path dest = temp_dir("dl_part" + path.substr(1, 3)) / "w.bin";
    std::ofstream(dest.string() + ".part", std::ios::binary) << body.substr(0, 1234);
    const auto result = download::download_file(server.url(path), dest, fast(sha256_of(body)));
    EXPECT_EQ(read_text(dest), body);
    EXPECT_TRUE(result.resumed);
    ASSERT_EQ(server.requests(path).size(), 1u);
    EXPECT_EQ(server.requests(path)[0].range_start.value_or(0), 1234u);
  }
}

TEST(Download, ServerErrorsAreRetriedThenReported) {
  TestHttpServer server;
  server.route("/down", [](auto&, int) { return TestHttpServer::Response{500, "oops"}; });
  server.route("/flaky", [](auto&, int call) {
    return call == 1 ? TestHttpServer::Response{503, "busy"} : TestHttpServer::Response{200, "payload"};
  });
  const fs::path dir = temp_dir("dl_errors");
  const std::string msg = error_of([&] { download::download_file(server.url("/down"), dir / "down.bin", fast()); });
  EXPECT_CONTAINS(msg, "cannot download " + server.url("/down"));
  EXPECT_CONTAINS(msg, "HTTP 500 after 3 attempts");
  EXPECT_CONTAINS(msg, "place it at " + (dir / "down.bin").string());
  EXPECT_EQ(server.requests("/down").size(), 3u);
  EXPECT_FALSE(fs::exists(dir / "down.bin"));
  EXPECT_FALSE(fs::exists(dir / "down.bin.part"));  // error pages are not file content

  const auto result = download::download_file(server.url("/flaky"), dir / "flaky.bin", fast());
  EXPECT_EQ(read_text(dir / "flaky.bin"), "payload");
  EXPECT_EQ(result.attempts, 2);

  // 404 is not transient: one request, no retries.
  const std::string missing = error_of([&] { download::download_file(server.url("/nope"), dir / "nope.bin", fast()); });
  EXPECT_CONTAINS(missing, "HTTP 404");
  EXPECT_EQ(server.requests("/nope").size(), 1u);
}

TEST(Download, RedirectsAreFollowed) {
  TestHttpServer server;
  server.route("/old", [&](auto&, int) {
    return TestHttpServer::Response{302, "", {{"Location", server.url("/new")}}};
  });
  server.route("/new", [](auto&, int) { return TestHttpServer::Response{200, "moved here"}; });
  const fs::path dest = temp_dir("dl_redirect") / "w.bin";
  download::download_file(server.url("/old"), dest, fast(sha256_of("moved here")));
  EXPECT_EQ(read_text(dest), "moved here");
}

TEST(Download, OfflineSaysWhereToPlaceTheFileByHand) {
  const std::string url = "http://127.0.0.1:" + std::to_string(TestHttpServer::closed_port()) + "/w.bin";
  const fs::path dest = temp_dir("dl_offline") / "w.bin";
  const std::string msg = error_of([&] { download::download_file(url, dest, fast("0123abcd")); });
  EXPECT_CONTAINS(msg, "cannot download " + url);
  EXPECT_CONTAINS(msg, "no network access?");
  EXPECT_CONTAINS(msg, "download " + url + " elsewhere and place it at " + dest.string());
  EXPECT_CONTAINS(msg, "0123abcd");
  EXPECT_FALSE(fs::exists(dest));
}

// Sets an environment variable for one test.
struct Env {
  Env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~Env() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  const char* name_;
  std::optional<std::string> old_;
};

TEST(WeightsStore, BuiltInRegistryHasEveryPytorchOodAndTorchvisionName) {
  Env registry("OOD_WEIGHTS_REGISTRY", "");
  std::set<std::string> names;
  for (const auto& e : download::weights_registry()) {
    names.insert(e.name);
    EXPECT_FALSE(e.url.empty()) << e.name;
    EXPECT_TRUE(e.preprocessing.has_value()) << e.name;
  }
  for (const char* n : {"imagenet32", "imagenet32-nocifar", "oe-cifar100-tune", "oe-cifar10-tune", "er-cifar10-tune",
                        "er-cifar100-tune", "cifar100-pt", "cifar10-pt", "cifar10-pixmix", "cifar100-pixmix",
                        "resnet18-imagenet1k-v1", "resnet34-imagenet1k-v1", "resnet50-imagenet1k-v1",
                        "resnet50-imagenet1k-v2", "resnet101-imagenet1k-v1", "resnet101-imagenet1k-v2",
                        "resnet152-imagenet1k-v1", "resnet152-imagenet1k-v2"})
    EXPECT_TRUE(names.count(n)) << n;
  const auto r50 = download::find_weights("resnet50-imagenet1k-v2");
  ASSERT_TRUE(r50.has_value());
  EXPECT_EQ(r50->sha256, "11ad3fa6");
  EXPECT_EQ(r50->preprocessing->resize, (std::vector<std::int64_t>{232}));
  EXPECT_EQ(r50->preprocessing->center_crop, 224);
  const auto c10 = download::find_weights("cifar10-pt");
  EXPECT_EQ(c10->preprocessing->resize, (std::vector<std::int64_t>{32, 32}));
  EXPECT_NEAR(c10->preprocessing->mean[0], 125.3 / 255, 1e-12);
}

TEST(WeightsStore, UserRegistryAddsAndOverridesAndIsCheckedOnFirstUse) {
  TestHttpServer server;
  const std::string body = random_bytes(4096, 5);
  server.route("/mine.pt", [&](auto&, int) { return TestHttpServer::Response{200, body}; });
  server.route("/mirror.pt", [&](auto&, int) { return TestHttpServer::Response{200, body}; });
  const fs::path dir = temp_dir("store");
  Env home("OOD_HOME", (dir / "home").string());
  const fs::path reg = dir / "registry.json";
  std::ofstream(reg) << R"({"mine": {"url": ")" << server.url("/mine.pt")
                     << R"(", "architecture": "resnet", "model_params": {"depth": 18}},
      "cifar10-pt": {"url": ")" << server.url("/mirror.pt") << R"(", "sha256": ")" << sha256_of(body) << "\"}}";
  Env registry("OOD_WEIGHTS_REGISTRY", reg.string());

  // An override of a built-in name keeps its other fields.
  const auto mirror = download::find_weights("cifar10-pt");
  ASSERT_TRUE(mirror.has_value());
  EXPECT_EQ(mirror->architecture, "wide-resnet");
  EXPECT_EQ(mirror->origin, reg.string());
  const fs::path file = download::fetch_weights(*mirror, fast());
  EXPECT_EQ(file, dir / "home" / "weights" / "wrn-cifar10-pt.pt");
  EXPECT_EQ(read_text(file), body);
  download::fetch_weights(*mirror, fast());  // cached and verified: no second request
  EXPECT_EQ(server.requests("/mirror.pt").size(), 1u);

  // No published checksum: the first download's is recorded, later uses are checked.
  const auto mine = download::find_weights("mine");
  ASSERT_TRUE(mine.has_value());
  const fs::path mine_file = download::fetch_weights(*mine, fast());
  EXPECT_CONTAINS(read_text(dir / "home" / "weights" / "recorded-sha256.json"), sha256_of(body));
  std::ofstream(mine_file, std::ios::binary) << "tampered";
  const std::string msg = error_of([&] { download::fetch_weights(*mine, fast()); });
  EXPECT_CONTAINS(msg, "sha256 is " + sha256_of("tampered"));
  EXPECT_CONTAINS(msg, "expected " + sha256_of(body) + " (recorded at its first download)");
  EXPECT_FALSE(fs::exists(mine_file));

  // resolve_weights: an existing path stays a path; a name is fetched, if it is for
  // the model asking.
  download::WeightsEntry entry;
  EXPECT_EQ(download::resolve_weights(reg.string(), "resnet", "/p", &entry), reg);
  EXPECT_TRUE(entry.name.empty());
  EXPECT_EQ(download::resolve_weights("mine", "resnet", "/p", &entry), mine_file);
  EXPECT_EQ(entry.name, "mine");
  EXPECT_CONTAINS(error_of([] { download::resolve_weights("mine", "wide-resnet", "/p"); }),
                  "/p: weights 'mine' are for model 'resnet', not 'wide-resnet' (with {\"depth\": 18})");
  EXPECT_EQ(download::resolve_weights("no/such/file.pt", "resnet", "/p"), fs::path("no/such/file.pt"));
}

TEST(WeightsStore, MalformedUserRegistriesAreNamed) {
  const fs::path dir = temp_dir("store_bad");
  const fs::path reg = dir / "registry.json";
  Env registry("OOD_WEIGHTS_REGISTRY", reg.string());
  auto with = [&](const std::string& text) {
    std::ofstream(reg) << text;
    return error_of([] { download::weights_registry(); });
  };
  EXPECT_CONTAINS(with(R"({"x": {"sha256": "abcdabcd"}})"), reg.string() + ": /x: a new entry needs \"url\"");
  EXPECT_CONTAINS(with(R"({"x": {"url": "http://h/x", "md5": "1"}})"), "/x/md5: unknown field");
  EXPECT_CONTAINS(with(R"({"x": {"url": "http://h/x", "sha256": "xyz"}})"), "/x/sha256: expected 8 to 64 hex digits");
  EXPECT_CONTAINS(with(R"({"x": {"url": "http://h/x", "file_name": "../evil"}})"), "/x/file_name: a plain file name");
  EXPECT_CONTAINS(with("{not json"), "not valid JSON");
  ::setenv("OOD_WEIGHTS_REGISTRY", (dir / "absent.json").c_str(), 1);
  EXPECT_CONTAINS(error_of([] { download::weights_registry(); }), "absent.json ($OOD_WEIGHTS_REGISTRY): cannot be read");
}

// A registry entry served from a file:// URL: the model plugins take its name.
TEST(WeightsStore, ModelsTakeRegistryNames) {
  const fs::path dir = temp_dir("store_models");
  Env home("OOD_HOME", (dir / "home").string());
  const fs::path wrn = fixture("reference/model/wrn_state.pt");
  const fs::path reg = dir / "registry.json";
  std::ofstream(reg) << R"({"ref-wrn": {"url": "file://)" << wrn.string() << R"(", "sha256": ")"
                     << download::sha256_of_file(wrn) << R"(", "architecture": "wide-resnet",
      "model_params": {"depth": 16, "widen_factor": 2, "num_classes": 10}},
      "r18": {"url": "file://)" << fixture("resnet/resnet18_state.pt").string() << R"(", "architecture": "resnet",
      "model_params": {"depth": 18, "num_classes": 5}}})";
  Env registry("OOD_WEIGHTS_REGISTRY", reg.string());

  auto model = make_model("wide-resnet", R"({"num_classes": 10, "depth": 16, "weights": "ref-wrn"})");
  at::NoGradGuard no_grad;
  EXPECT_TRUE(all_close(model->logits(tensor_of(reference_data(), "x_in")), tensor_of(reference_data(), "logits_in"),
                        1e-4, 1e-4));
  auto resnet = make_model("resnet", R"({"depth": 18, "num_classes": 5, "weights": "r18"})");
  EXPECT_EQ(resnet->info().num_classes, 5);
  // Weights for another architecture, or for other parameters, are named as such.
  std::string msg = error_of([] { make_model("resnet", R"({"depth": 18, "weights": "ref-wrn"})"); });
  EXPECT_CONTAINS(msg, "/test/params/weights: weights 'ref-wrn' are for model 'wide-resnet', not 'resnet'");
  msg = error_of([] { make_model("wide-resnet", R"({"num_classes": 10, "depth": 22, "weights": "ref-wrn"})"); });
  EXPECT_CONTAINS(msg, "weights 'ref-wrn' fit {\"depth\": 16, \"widen_factor\": 2, \"num_classes\": 10}");
}

TEST(WeightsStore, CommandsListAndFetch) {
  const char* binary = std::getenv("OOD_BINARY");
  ASSERT_NE(binary, nullptr) << "OOD_BINARY is set by meson";
  const fs::path dir = temp_dir("store_cli");
  const fs::path wrn = fixture("reference/model/wrn_state.pt");
  const fs::path reg = dir / "registry.json";
  std::ofstream(reg) << R"({"ref-wrn": {"url": "file://)" << wrn.string() << R"(", "architecture": "wide-resnet"}})";
  const std::string env = "OOD_HOME=" + (dir / "home").string() + " OOD_WEIGHTS_REGISTRY=" + reg.string() + " ";
  auto list = run_command(env + binary + " weights list 2>&1");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_CONTAINS(list.output, "resnet50-imagenet1k-v2");
  EXPECT_CONTAINS(list.output, "cifar10-pixmix");
  EXPECT_CONTAINS(list.output, "ref-wrn");
  auto fetch = run_command(env + binary + " weights fetch ref-wrn 2>&1");
  EXPECT_EQ(fetch.exit_code, 0) << fetch.output;
  EXPECT_TRUE(fs::exists(dir / "home" / "weights" / "ref-wrn-wrn_state.pt")) << fetch.output;
  // The CACHED column now shows the file's size instead of "no".
  list = run_command(env + binary + " weights list 2>&1");
  const auto line_start = list.output.find("ref-wrn ");
  ASSERT_NE(line_start, std::string::npos) << list.output;
  const std::string line = list.output.substr(line_start, list.output.find('\n', line_start) - line_start);
  EXPECT_CONTAINS(line, "2.8 MB");
  EXPECT_EQ(line.find(" no "), std::string::npos) << line;
  auto bad = run_command(env + binary + " weights fetch no-such-weights 2>&1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_CONTAINS(bad.output, "no-such-weights");
}

}  // namespace
}  // namespace ood::test
