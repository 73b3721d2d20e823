// Hostile but fair input (issue 11): every case ends in one clear ood::Error naming
// what and where, never a crash, a hang or memory beyond what the data needs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <ATen/ATen.h>

#include <climits>
#include <cmath>
#include <functional>
#include <fstream>
#include <iterator>

#include "ood/core/data_loader.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/core/results.hpp"
#include "ood/error.hpp"
#include "ood/io/idx.hpp"
#include "ood/io/torch_file.hpp"
#include "test_support.hpp"

namespace ood::core {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<Diagnostic> diagnostics_of(const std::string& text) {
  try {
    parse_pipeline(parse_json_text(text, "p.json"), test::registry(), "p.json");
  } catch (const PipelineError& e) {
    return e.diagnostics();
  }
  return {};
}

bool has(const std::vector<Diagnostic>& diags, const std::string& text) {
  for (const auto& d : diags)
    if (contains(d.to_string(), text)) return true;
  return false;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

const std::string kData =
    R"("data": {"in": {"plugin": "uniform-noise", "params": {"size": 4}}, "out": {"u": {"plugin": "uniform-noise", "params": {"size": 4}}}})";
const std::string kModel = R"("model": {"plugin": "wide-resnet", "params": {"num_classes": 10, "depth": 10}})";

// --- 1. null sections count as absent, also for the checks between sections.
TEST(Hardening, NullModelOrInDataIsReportedNotRun) {
  auto d = diagnostics_of(R"({"model": null, )" + kData + R"(, "detectors": {"m": {"plugin": "max-softmax"}}})");
  EXPECT_TRUE(has(d, "/: detectors need a model")) << d.size();
  d = diagnostics_of("{" + kModel + R"(, "data": {"in": null, "out": {"u": {"plugin": "uniform-noise"}}},
                      "detectors": {"m": {"plugin": "max-softmax"}}})");
  EXPECT_TRUE(has(d, "/data: detectors need in-distribution data"));
  d = diagnostics_of(R"({"model": null, "train": {"data": {"plugin": "uniform-noise"}}})");
  EXPECT_TRUE(has(d, "training needs a model"));
}

// --- 2. nesting limits, reported with a pointer, in linear time.
TEST(Hardening, DeepJsonIsRefusedWithItsPointer) {
  const std::string deep = R"({"detectors": {"a": {"plugin": "max-softmax", "params": {"t": )" +
                           std::string(90000, '[') + std::string(90000, ']') + "}}}}";
  const std::string msg = message_of([&] { parse_json_text(deep, "p.json"); });
  EXPECT_TRUE(contains(msg, "p.json: /detectors/a/params/t/0/0/0")) << msg.substr(0, 300);
  EXPECT_TRUE(contains(msg, "nested deeper than 128 levels")) << msg.substr(0, 300);
  // A document built by code (or --set) is checked by parse_pipeline itself.
  json doc = json::object();
  json* node = &doc["evaluate"];
  for (int i = 0; i < 200; ++i) node = &(*node)["x"];
  const auto d = [&] {
    try {
      parse_pipeline(doc, test::registry(), "p.json");
    } catch (const PipelineError& e) {
      return e.diagnostics();
    }
    return std::vector<Diagnostic>{};
  }();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(contains(d[0].message, "nested deeper than 128 levels")) << d[0].to_string();
}

TEST(Hardening, DeeplyNestedComponentsAreRefusedQuickly) {
  auto nested = [](int levels) {  // built in linear time
    std::string s;
    for (int i = 0; i < levels; ++i) s += R"({"plugin": "class-filter", "params": {"classes": [0], "dataset": )";
    s += R"({"plugin": "uniform-noise"})";
    for (int i = 0; i < levels; ++i) s += "}}";
    return s;
  };
  // Within the JSON limit but beyond the component limit: reported at its pointer.
  auto d = diagnostics_of("{" + kModel + R"(, "train": {"data": )" + nested(40) + "}}");
  ASSERT_FALSE(d.empty());
  EXPECT_TRUE(has(d, "components nested deeper than 32 levels")) << d[0].to_string();
  EXPECT_TRUE(contains(d[0].pointer, "/train/data/params/dataset/params/dataset")) << d[0].pointer;
  // 5000 and 20000 levels: the JSON limit, found while parsing (no recursion at all).
  for (int levels : {5000, 20000}) {
    const std::string msg =
        message_of([&] { parse_json_text("{" + kModel + R"(, "train": {"data": )" + nested(levels) + "}}", "p.json"); });
    EXPECT_TRUE(contains(msg, "nested deeper than 128 levels")) << msg.substr(0, 200);
  }
}

// --- 8/9. messages and silently accepted input in pipelines.
TEST(Hardening, DuplicateKeysAreErrorsWithPointers) {
  const std::string msg = message_of([] {
    parse_json_text(R"({"detectors": {"a": {"plugin": "max-softmax"}, "a": {"plugin": "energy-based"}}})", "p.json");
  });
  EXPECT_TRUE(contains(msg, "/detectors/a: duplicate key")) << msg;
  EXPECT_THROW(parse_json_text(R"({"x": [{"k": 1, "k": 1}]})", "p.json"), PipelineError);
}

TEST(Hardening, NumberOverflowNamesFileLineColumn) {
  const std::string msg = message_of([] { parse_json_text("{\n  \"seed\": 1e999\n}", "p.json"); });
  EXPECT_TRUE(contains(msg, "p.json:2:11: not valid JSON: the number 1e999 is out of range")) << msg;
  EXPECT_THROW(parse_json_text("[1e999]", "p.json"), InvalidArgument);
}

TEST(Hardening, EmptyDetectorsAndOutSetsAreExplained) {
  auto d = diagnostics_of("{" + kModel + ", " + kData + R"(, "detectors": {}})");
  EXPECT_TRUE(has(d, "/detectors: no detector: name at least one")) << (d.empty() ? "" : d[0].to_string());
  d = diagnostics_of("{" + kModel + R"(, "data": {"in": {"plugin": "uniform-noise"}, "out": {}}, "detectors": {"m": {"plugin": "max-softmax"}}})");
  EXPECT_TRUE(has(d, "/data/out: no OOD set"));
}

TEST(Hardening, PathsWithNulAreRefused) {
  auto d = diagnostics_of(R"({"model": {"plugin": "wide-resnet", "params": {"weights": "a\u0000b.pt"}},
                              "train": {"data": {"plugin": "uniform-noise"}}})");
  EXPECT_TRUE(has(d, "/model/params/weights: expected a path without NUL characters")) << (d.empty() ? "" : d[0].to_string());
  d = diagnostics_of("{" + kModel + ", " + kData + R"(, "detectors": {"m": {"plugin": "max-softmax", "save_state": "s\u0000.pt"}}})");
  EXPECT_TRUE(has(d, "/detectors/m/save_state: a path cannot contain a NUL"));
  const Params p = Params::from_json_text(R"({"f": "x\u0000y"})", "/p");
  EXPECT_THROW(p.get_path("f"), InvalidArgument);
}

TEST(Hardening, PipelineFileThatIsNotAFileGetsTheRealReason) {
  const fs::path dir = test::temp_dir("hardening-pipeline-file");
  EXPECT_TRUE(contains(message_of([&] { read_pipeline_file(dir); }), "is a directory"));
  const fs::path fifo = dir / "fifo.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(contains(message_of([&] { read_pipeline_file(fifo); }), "not a regular file"));  // and no hang
  EXPECT_TRUE(contains(message_of([&] { read_pipeline_file(dir / "none.json"); }), "no such pipeline file"));
  if (::geteuid() != 0) {  // root reads everything
    const fs::path locked = dir / "locked.json";
    std::ofstream(locked) << "{}";
    fs::permissions(locked, fs::perms::none);
    EXPECT_TRUE(contains(message_of([&] { read_pipeline_file(locked); }), "Permission denied"));
  }
}

// --- 7. no signed overflow for huge batch sizes: one batch.
TEST(Hardening, HugeBatchSizeIsOneBatch) {
  LoaderOptions o;
  for (std::int64_t batch : {INT64_MAX, INT64_MAX - 1, INT64_MAX / 2 + 1}) {
    o.batch_size = batch;
    o.drop_last = false;
    EXPECT_EQ(DataLoader::count_batches(10, o), 1);
    EXPECT_EQ(DataLoader::count_batches(0, o), 0);
    o.drop_last = true;
    EXPECT_EQ(DataLoader::count_batches(10, o), 0);
  }
  o.batch_size = 3;
  o.drop_last = false;
  EXPECT_EQ(DataLoader::count_batches(10, o), 4);
  EXPECT_EQ(DataLoader::count_batches(INT64_MAX, o), INT64_MAX / 3 + 1);
}

class Samples final : public Dataset {
 public:
  Samples(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  std::int64_t size() const override { return x_.size(0); }
  Sample get(std::int64_t i) const override { return {x_[i], y_[i]}; }
  DatasetInfo info() const override { return {}; }

 private:
  at::Tensor x_, y_;
};

TEST(Hardening, LoaderWithHugeBatchAndBadSamples) {
  LoaderOptions o;
  o.batch_size = INT64_MAX;
  o.workers = 0;
  o.name = "/data/in";
  DataLoader ok(std::make_shared<Samples>(at::rand({5, 2}), at::arange(5)), {}, o);
  auto batch = ok.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->inputs.size(0), 5);
  EXPECT_FALSE(ok.next().has_value());

  at::Tensor x = at::rand({5, 2});
  x[3][1] = std::nan("");
  DataLoader nan(std::make_shared<Samples>(x, at::arange(5)), {}, o);
  EXPECT_EQ(message_of([&] { nan.next(); }), "/data/in: sample 3: the input contains NaN");

  DataLoader complex(std::make_shared<Samples>(at::rand({5, 2}), at::ones({5}, at::kComplexFloat)), {}, o);
  EXPECT_TRUE(contains(message_of([&] { complex.next(); }), "/data/in: sample 0: labels are ComplexFloat"));
}

// --- 6. sizes bounded before allocating; the IDX size overflow.
TEST(Hardening, IdxSizeOverflowIsRefused) {
  std::vector<std::uint8_t> header = {0, 0, 8, 3, 0, 0x10, 0, 0, 0, 0x10, 0, 0, 0x80, 0, 0, 0};  // 2^20 x 2^20 x 2^31
  EXPECT_TRUE(contains(message_of([&] { io::parse_idx(header, "f.idx"); }), "f.idx: IDX data too large"));
}

void write_gzip(const fs::path& file, const std::string& content) {
  gzFile gz = gzopen(file.c_str(), "wb9");
  ASSERT_NE(gz, nullptr);
  for (std::size_t done = 0; done < content.size();) {
    const auto n = static_cast<unsigned>(std::min<std::size_t>(content.size() - done, 1 << 20));
    ASSERT_EQ(gzwrite(gz, content.data() + done, n), static_cast<int>(n));
    done += n;
  }
  gzclose(gz);
}

TEST(Hardening, GzipInflatesOnlyAsFarAsTheIdxHeaderPromises) {
  const fs::path dir = test::temp_dir("hardening-gzip");
  // Header: 10 bytes of uint8; the stream goes on with 64 MiB of zeros (64 KiB gzipped).
  std::string content("\x00\x00\x08\x01\x00\x00\x00\x0a", 8);
  content += std::string(64u << 20, '\0');
  write_gzip(dir / "bomb.gz", content);
  ASSERT_LT(fs::file_size(dir / "bomb.gz"), 1u << 20);
  const std::string msg = message_of([&] { io::read_idx(dir / "bomb.gz"); });
  EXPECT_TRUE(contains(msg, "inflates beyond 18 bytes, the size its IDX header promises")) << msg;
  // A header promising more than the stream can hold is refused before inflating.
  write_gzip(dir / "liar.gz", std::string("\x00\x00\x08\x02\x00\x01\x00\x00\x00\x01\x00\x00", 12));
  EXPECT_TRUE(contains(message_of([&] { io::read_idx(dir / "liar.gz"); }), "more than a"));
  // A good file still reads.
  write_gzip(dir / "good.gz", std::string("\x00\x00\x08\x01\x00\x00\x00\x02\x07\x09", 10));
  EXPECT_EQ(io::read_idx(dir / "good.gz")[1].item<int>(), 9);
}

std::string read_bytes(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Hardening, ZipRecordCrcIsVerified) {
  const fs::path dir = test::temp_dir("hardening-crc");
  std::string bytes = read_bytes(test::fixture("torch_file/checkpoint.pt"));
  // The first storage record's local header: its data follows the name and extra field.
  const auto name = bytes.find("/data/0");
  ASSERT_NE(name, std::string::npos);
  const std::size_t header = bytes.rfind("PK\x03\x04", name);
  ASSERT_NE(header, std::string::npos);
  const auto u16 = [&](std::size_t at) { return std::size_t(std::uint8_t(bytes[at])) | std::size_t(std::uint8_t(bytes[at + 1])) << 8; };
  const std::size_t data = header + 30 + u16(header + 26) + u16(header + 28);
  bytes[data] = static_cast<char>(bytes[data] ^ 0x40);
  std::ofstream(dir / "flipped.pt", std::ios::binary) << bytes;
  const std::string msg = message_of([&] { io::load_torch_file(dir / "flipped.pt"); });
  EXPECT_TRUE(contains(msg, "the CRC-32 of record data/0 does not match")) << msg;
  EXPECT_NO_THROW(io::load_torch_file(test::fixture("torch_file/checkpoint.pt")));
}

fs::path fuzz_file(const std::string& relative) {
  const char* root = std::getenv("OOD_SOURCE_DIR");
  return fs::path(root ? root : ".") / "tests" / "fuzz" / relative;
}

TEST(Hardening, NestedPicklesStopAtTheDepthLimit) {
  // 100000 nested lists in 200 KB: LibTorch's IValue destructor used to overflow the stack.
  const std::string msg = message_of([] { io::load_torch_file(fuzz_file("crashes/torch_file/nested_lists.pt")); });
  EXPECT_TRUE(contains(msg, "containers nested deeper than 100 levels")) << msg;
}

TEST(Hardening, CompressedZipRecordsAreRefusedBeforeInflating) {
  // data.pkl deflated, claiming 3 GiB: refused from the central directory alone.
  const std::string msg = message_of([] { io::load_torch_file(fuzz_file("crashes/torch_file/deflated_3gib.pt")); });
  EXPECT_TRUE(contains(msg, "is compressed (method 8); torch.save stores records uncompressed")) << msg;
}

// --- 3/4. the output folder: checked first, replaced as one set.
TEST(Hardening, OutputFolderIsCheckedFirst) {
  const fs::path dir = test::temp_dir("hardening-out-check");
  std::ofstream(dir / "file") << "x";
  EXPECT_TRUE(contains(message_of([&] { ResultStaging s(dir / "file"); }), "not a folder"));
  EXPECT_TRUE(contains(message_of([&] { ResultStaging s(dir / "file" / "sub"); }), "cannot create the output folder's parent"));
  EXPECT_THROW(ResultStaging s(""), InvalidArgument);
  EXPECT_TRUE(contains(message_of([&] { ResultStaging s(fs::current_path()); }), "cannot be the working directory"));
  EXPECT_THROW(ResultStaging s(fs::current_path().parent_path()), InvalidArgument);
  EXPECT_THROW(ResultStaging s("/"), InvalidArgument);
}

TEST(Hardening, ResultSetIsSwappedAsOne) {
  const fs::path dir = test::temp_dir("hardening-swap");
  const fs::path out = dir / "res";
  fs::create_directories(out);
  std::ofstream(out / "metrics.json") << "old";
  std::ofstream(out / "scores.csv") << "old";
  std::ofstream(out / "notes.txt") << "mine";
  {
    ResultStaging staging(out);
    ASSERT_TRUE(fs::is_directory(staging.dir()));
    EXPECT_EQ(staging.dir().parent_path(), fs::weakly_canonical(dir));  // not inside the results folder
    write_file_atomically(staging.dir() / "metrics.json", "new");
    EXPECT_EQ(test::read_text(out / "metrics.json"), "old");  // nothing visible before commit
    staging.commit();
  }
  EXPECT_EQ(test::read_text(out / "metrics.json"), "new");
  EXPECT_FALSE(fs::exists(out / "scores.csv"));  // the old set's file went with the old set
  EXPECT_EQ(test::read_text(out / "notes.txt"), "mine");  // other files stay
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"res"});  // no staging folder, no old set

  {
    ResultStaging abandoned(out);  // a failed run: the staging folder goes, the set stays
    write_file_atomically(abandoned.dir() / "metrics.json", "half");
  }
  EXPECT_EQ(test::read_text(out / "metrics.json"), "new");
  left.clear();
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"res"});
}

TEST(Hardening, WriteErrorsCarryTheSystemReason) {
  const fs::path dir = test::temp_dir("hardening-write");
  std::ofstream(dir / "plain") << "x";
  EXPECT_TRUE(contains(message_of([&] { write_file_atomically(dir / "plain" / "a.txt", "x"); }), "Not a directory"));
  fs::create_directories(dir / "blocked");
  EXPECT_TRUE(contains(message_of([&] { write_file_atomically(dir / "blocked", "x"); }), "Is a directory"));
  if (fs::exists("/dev/full")) {
    // /dev/full as the temporary file's directory is not possible; write through a
    // symlink named like the temporary file instead: ENOSPC comes back as text.
    const fs::path target = dir / "full.txt";
    fs::create_symlink("/dev/full", target.string() + ".tmp-" + std::to_string(::getpid()));
    EXPECT_TRUE(contains(message_of([&] { write_file_atomically(target, "data"); }), "No space left on device"));
  }
}

}  // namespace
}  // namespace ood::core
