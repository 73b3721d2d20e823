// Tests of ood/io/torch_file.hpp against files written by Python's torch.save
// (tests/fixtures/reference and tests/fixtures/torch_file, the latter made by
// tests/fixtures/torch_file/generate.py) and against LibTorch's own unpickler.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"

namespace fs = std::filesystem;
using ood::TensorDict;
using ood::io::load_state_dict;
using ood::io::load_torch_file;
using ood::io::save_tensor_dict;

namespace {

fs::path fixtures_dir() {
  const char* dir = std::getenv("OOD_FIXTURES_DIR");
  if (dir == nullptr || *dir == '\0') {
    throw std::runtime_error("OOD_FIXTURES_DIR is not set: point it to tests/fixtures of the source tree");
  }
  return dir;
}

fs::path fixture(const std::string& relative) { return fixtures_dir() / relative; }
fs::path torch_file_fixture(const std::string& name) { return fixture("torch_file/" + name); }

std::vector<char> read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& file, const std::vector<char>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Same dtype, shape and bytes; NaN-safe, unlike a value comparison.
::testing::AssertionResult bitwise_equal(const at::Tensor& actual, const at::Tensor& expected) {
  if (actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure() << "dtype " << actual.scalar_type() << " != " << expected.scalar_type();
  }
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != " << expected.sizes();
  }
  const auto a = actual.contiguous();
  const auto e = expected.contiguous();
  if (a.nbytes() > 0 && std::memcmp(a.data_ptr(), e.data_ptr(), a.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "contents differ";
  }
  return ::testing::AssertionSuccess();
}

// Expects `action` to throw ood::FileError whose message names `file` and contains
// every string of `parts`.
void expect_file_error(const std::function<void()>& action, const fs::path& file,
                       std::initializer_list<std::string> parts) {
  try {
    action();
    ADD_FAILURE() << "no ood::FileError for " << file;
  } catch (const ood::FileError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

// A fresh directory, removed with its content at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("ood_test_torch_file_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

at::ScalarType dtype_from_name(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "int64") return at::kLong;
  throw std::runtime_error("unexpected dtype " + name);
}

std::vector<std::string> keys_of(const c10::impl::GenericDict& dict) {
  std::vector<std::string> keys;
  for (const auto& entry : dict) keys.push_back(entry.key().toStringRef());
  return keys;
}

// Every tensor of a file read by ood matches LibTorch's own unpickler on the same
// bytes, in the same key order.
void expect_same_as_libtorch(const fs::path& file) {
  const auto ours = load_torch_file(file).toGenericDict();
  const auto theirs = torch::jit::pickle_load(read_file(file)).toGenericDict();
  ASSERT_EQ(keys_of(ours), keys_of(theirs));
  for (const auto& entry : theirs) {
    const auto& key = entry.key().toStringRef();
    EXPECT_TRUE(bitwise_equal(ours.at(key).toTensor(), entry.value().toTensor())) << key;
  }
}

// The formulas of generate.py's all_dtypes().
std::vector<std::pair<std::string, at::Tensor>> expected_all_dtypes() {
  const auto floats = at::tensor({0.5, -1.25, 3.0, 1024.0, -0.0078125, 7.75}, at::kFloat);
  const auto ints = at::tensor({0, 1, -2, 100, -128, 127}, at::kLong);
  return {
      {"float32", floats.reshape({2, 3})},
      {"float64", floats.to(at::kDouble) / 3},
      {"float16", floats.to(at::kHalf)},
      {"bfloat16", floats.to(at::kBFloat16)},
      {"int64", ints * (std::int64_t(1) << 40)},
      {"int32", ints.to(at::kInt) * 65536},
      {"int16", ints.to(at::kShort) * 256},
      {"int8", ints.to(at::kChar)},
      {"uint8", at::tensor({0, 1, 2, 127, 128, 255}, at::kInt).to(at::kByte)},
      {"bool", at::tensor({1, 0, 0, 1, 1, 0}, at::kInt).to(at::kBool)},
      {"scalar", at::scalar_tensor(2.5, at::kFloat)},
      {"empty", at::zeros({0, 3})},
  };
}

const char* const kFormats[] = {"", "_legacy"};

}  // namespace

// --- reference fixtures -----------------------------------------------------------

TEST(TorchFile, WrnStateMatchesModelJson) {
  const auto state = load_state_dict(fixture("reference/model/wrn_state.pt"));
  std::ifstream json_file(fixture("reference/model/model.json"));
  const auto expected = nlohmann::json::parse(json_file).at("state_dict");
  ASSERT_EQ(state.size(), 83u);
  ASSERT_EQ(expected.size(), 83u);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [name, tensor] = state.entries()[i];
    EXPECT_EQ(name, expected[i].at("name").get<std::string>()) << "entry " << i;
    EXPECT_EQ(tensor.sizes().vec(), expected[i].at("shape").get<std::vector<std::int64_t>>()) << name;
    EXPECT_EQ(tensor.scalar_type(), dtype_from_name(expected[i].at("dtype").get<std::string>())) << name;
    EXPECT_TRUE(tensor.device().is_cpu());
  }
  EXPECT_FALSE(state.contains("_metadata"));
  // A real value: BatchNorm counters were set by 8 training batches.
  EXPECT_EQ(state.at("block1.layer.0.bn1.num_batches_tracked").item<std::int64_t>(), 8);
}

TEST(TorchFile, WrnLegacyEqualsZip) {
  const auto zip = load_state_dict(fixture("reference/model/wrn_state.pt"));
  const auto legacy = load_state_dict(fixture("reference/model/wrn_state_legacy.pt"));
  ASSERT_EQ(legacy.keys(), zip.keys());
  for (const auto& [name, tensor] : zip) EXPECT_TRUE(bitwise_equal(legacy.at(name), tensor)) << name;
}

TEST(TorchFile, OrderedDictStateIsDropped) {
  const auto value = load_torch_file(fixture("reference/model/wrn_state.pt"));
  ASSERT_TRUE(value.isGenericDict());
  const auto dict = value.toGenericDict();
  EXPECT_EQ(dict.size(), 83u);
  EXPECT_FALSE(dict.contains(std::string("_metadata")));
}

TEST(TorchFile, ReferenceDataMatchesLibtorch) {
  const auto file = fixture("reference/data/data.pt");
  expect_same_as_libtorch(file);
  const auto data = load_torch_file(file).toGenericDict();
  EXPECT_EQ(data.at("x_fit").toTensor().scalar_type(), at::kFloat);
  EXPECT_EQ(data.at("x_fit").toTensor().sizes(), at::IntArrayRef({160, 3, 32, 32}));
  EXPECT_EQ(data.at("y_fit").toTensor().scalar_type(), at::kLong);
  EXPECT_EQ(data.at("logits_fit_f64").toTensor().scalar_type(), at::kDouble);
}

TEST(TorchFile, ReferenceMetricsMatchLibtorch) {
  const auto file = fixture("reference/metrics/ood_metrics.pt");
  expect_same_as_libtorch(file);
  const auto metrics = load_torch_file(file).toGenericDict();
  EXPECT_EQ(metrics.at("big_scores").toTensor().scalar_type(), at::kHalf);
  EXPECT_EQ(metrics.at("big_labels").toTensor().scalar_type(), at::kChar);
  EXPECT_EQ(metrics.at("big_labels").toTensor().numel(), 200000);
}

// --- generated fixtures -----------------------------------------------------------

TEST(TorchFile, AllDtypes) {
  const auto expected = expected_all_dtypes();
  for (const char* format : kFormats) {
    const auto file = torch_file_fixture(std::string("all_dtypes") + format + ".pt");
    SCOPED_TRACE(file.string());
    const auto loaded = load_state_dict(file);
    ASSERT_EQ(loaded.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(loaded.entries()[i].first, expected[i].first);
      EXPECT_TRUE(bitwise_equal(loaded.entries()[i].second, expected[i].second)) << expected[i].first;
    }
  }
}

TEST(TorchFile, AllDtypesZipMatchesLibtorch) { expect_same_as_libtorch(torch_file_fixture("all_dtypes.pt")); }

TEST(TorchFile, ViewsKeepLayoutAndShareStorage) {
  const auto base_expected = at::arange(24, at::kFloat).reshape({4, 6});
  for (const char* name : {"views.pt", "views_legacy.pt", "views_proto4_legacy.pt"}) {
    const auto file = torch_file_fixture(name);
    SCOPED_TRACE(file.string());
    const auto views = load_state_dict(file);
    const auto& base = views.at("base");
    const auto& transposed = views.at("transposed");
    const auto& slice = views.at("slice");
    const auto& flat = views.at("flat");
    EXPECT_TRUE(bitwise_equal(base, base_expected));
    EXPECT_TRUE(bitwise_equal(transposed, base_expected.t()));
    EXPECT_TRUE(bitwise_equal(slice, base_expected.slice(0, 1, 3).slice(1, 2, 5)));
    EXPECT_TRUE(bitwise_equal(flat, base_expected.view(-1)));
    EXPECT_EQ(transposed.strides(), at::IntArrayRef({1, 6}));
    EXPECT_EQ(slice.strides(), at::IntArrayRef({6, 1}));
    EXPECT_EQ(slice.storage_offset(), 8);
    EXPECT_TRUE(transposed.storage().is_alias_of(base.storage()));
    EXPECT_TRUE(slice.storage().is_alias_of(base.storage()));
    EXPECT_FALSE(views.at("other").storage().is_alias_of(base.storage()));
    // Writes through one view show in the others, as in Python.
    base[1][2].fill_(-1.0);
    EXPECT_EQ(transposed[2][1].item<float>(), -1.0f);
    EXPECT_EQ(slice[0][0].item<float>(), -1.0f);
    EXPECT_EQ(flat[8].item<float>(), -1.0f);
    EXPECT_TRUE(bitwise_equal(views.at("other"), at::tensor({1, 2, 3}, at::kLong)));
  }
}

TEST(TorchFile, NestedContainers) {
  for (const char* name : {"containers.pt", "containers_legacy.pt", "containers_proto4.pt"}) {
    const auto file = torch_file_fixture(name);
    SCOPED_TRACE(file.string());
    const auto top = load_torch_file(file).toGenericDict();
    EXPECT_EQ(keys_of(top), (std::vector<std::string>{"nested", "param", "text", "pi", "ordered"}));

    const auto nested = top.at("nested").toGenericDict();
    EXPECT_EQ(keys_of(nested), (std::vector<std::string>{"list", "big", "negative", "tensors"}));
    const auto list = nested.at("list").toListRef();
    ASSERT_EQ(list.size(), 2u);
    const auto& first = list[0].toTupleRef().elements();
    ASSERT_EQ(first.size(), 3u);
    EXPECT_EQ(first[0].toInt(), 1);
    EXPECT_EQ(first[1].toStringRef(), "two");
    EXPECT_EQ(first[2].toDouble(), 3.5);
    const auto& second = list[1].toTupleRef().elements();
    ASSERT_EQ(second.size(), 3u);
    EXPECT_TRUE(second[0].isBool() && second[0].toBool());
    EXPECT_TRUE(second[1].isNone());
    EXPECT_EQ(second[2].toInt(), -7);
    EXPECT_EQ(nested.at("big").toInt(), std::int64_t(1) << 40);
    EXPECT_EQ(nested.at("negative").toInt(), -(std::int64_t(1) << 40));
    const auto tensors = nested.at("tensors").toListRef();
    ASSERT_EQ(tensors.size(), 2u);
    EXPECT_TRUE(bitwise_equal(tensors[0].toTensor(), at::tensor({1.0, 2.0}, at::kFloat)));
    EXPECT_TRUE(bitwise_equal(tensors[1].toTensor(), at::tensor({3}, at::kLong)));

    const auto param = top.at("param").toTensor();
    EXPECT_TRUE(bitwise_equal(param, at::full({2, 2}, 0.25, at::kFloat)));
    EXPECT_FALSE(param.requires_grad());
    EXPECT_EQ(top.at("text").toStringRef(), "h\xc3\xa9llo \xe2\x82\xac");
    EXPECT_EQ(top.at("pi").toDouble(), 3.141592653589793);
    const auto ordered = top.at("ordered").toGenericDict();
    EXPECT_EQ(keys_of(ordered), (std::vector<std::string>{"z", "a"}));
    EXPECT_EQ(ordered.at("a").toInt(), 2);

    // As a state dict only the tensor entries count.
    EXPECT_EQ(load_state_dict(file).keys(), std::vector<std::string>{"param"});
  }
}

TEST(TorchFile, CheckpointIsUnwrapped) {
  for (const char* format : kFormats) {
    const auto file = torch_file_fixture(std::string("checkpoint") + format + ".pt");
    SCOPED_TRACE(file.string());
    const auto state = load_state_dict(file);
    EXPECT_EQ(state.keys(), (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                                      "1.running_var", "1.num_batches_tracked"}));
    EXPECT_TRUE(bitwise_equal(state.at("0.weight"), at::arange(6, at::kFloat).reshape({2, 3}) / 4));
    EXPECT_TRUE(bitwise_equal(state.at("0.bias"), at::full({2}, 0.5, at::kFloat)));
    EXPECT_TRUE(bitwise_equal(state.at("1.running_mean"), at::full({2}, -1.5, at::kFloat)));
    EXPECT_TRUE(bitwise_equal(state.at("1.num_batches_tracked"), at::scalar_tensor(7, at::kLong)));

    const auto top = load_torch_file(file).toGenericDict();
    EXPECT_EQ(top.at("epoch").toInt(), 3);
    EXPECT_EQ(top.at("optimizer").toGenericDict().at("lr").toDouble(), 0.1);
  }
}

// --- rejected files ---------------------------------------------------------------

TEST(TorchFile, ForbiddenGlobalsAreNamed) {
  const auto counter = torch_file_fixture("forbidden_counter.pt");
  expect_file_error([&] { load_torch_file(counter); }, counter,
                    {"unsupported pickle global 'collections.Counter' (only torch tensor/storage globals and "
                     "collections.OrderedDict are allowed)"});
  const auto system = torch_file_fixture("forbidden_system_legacy.pt");
  expect_file_error([&] { load_state_dict(system); }, system, {"unsupported pickle global 'posix.system'"});
}

TEST(TorchFile, BrokenFilesAreRejected) {
  const auto truncated = torch_file_fixture("truncated.pt");
  expect_file_error([&] { load_torch_file(truncated); }, truncated, {"corrupt or truncated zip archive"});
  const auto legacy = torch_file_fixture("truncated_legacy.pt");
  expect_file_error([&] { load_torch_file(legacy); }, legacy, {"truncated file: storage ", " needs 32 bytes, 12 left"});
  const auto legacy_pickle = torch_file_fixture("truncated_legacy_pickle.pt");
  expect_file_error([&] { load_torch_file(legacy_pickle); }, legacy_pickle, {"truncated file"});
  const auto garbage = torch_file_fixture("garbage.pt");
  expect_file_error([&] { load_torch_file(garbage); }, garbage,
                    {"not a PyTorch file (neither a zip archive nor a legacy pickle)"});
  const auto empty = torch_file_fixture("empty.pt");
  expect_file_error([&] { load_state_dict(empty); }, empty, {"empty file"});
  const auto missing = torch_file_fixture("does_not_exist.pt");
  expect_file_error([&] { load_state_dict(missing); }, missing, {"no such file"});
  const auto directory = fixtures_dir() / "torch_file";
  expect_file_error([&] { load_torch_file(directory); }, directory, {"is a directory"});
  const auto record = torch_file_fixture("missing_record.pt");
  expect_file_error([&] { load_torch_file(record); }, record, {"missing storage record data/0"});
  const auto big_endian = torch_file_fixture("big_endian_legacy.pt");
  expect_file_error([&] { load_torch_file(big_endian); }, big_endian, {"big-endian"});
}

TEST(TorchFile, NonStateDictsAreRejected) {
  ScratchDir dir;
  const auto list_file = dir.path() / "list.pt";
  write_file(list_file, torch::jit::pickle_save(c10::IValue(c10::List<std::int64_t>({1, 2, 3}))));
  // LibTorch's specialised-list global is understood...
  const auto list = load_torch_file(list_file);
  ASSERT_TRUE(list.isList());
  EXPECT_EQ(list.toListRef().size(), 3u);
  // ...but a list is no state dict.
  expect_file_error([&] { load_state_dict(list_file); }, list_file, {"not a state dict"});

  const auto no_tensors = dir.path() / "no_tensors.pt";
  c10::Dict<std::string, std::int64_t> ints;
  ints.insert("epoch", 3);
  write_file(no_tensors, torch::jit::pickle_save(c10::IValue(ints)));
  expect_file_error([&] { load_state_dict(no_tensors); }, no_tensors, {"not a state dict", "none of its 1 entries"});
}

TEST(TorchFile, ReadsLibtorchPickleSave) {
  ScratchDir dir;
  const auto file = dir.path() / "libtorch.pt";
  c10::Dict<std::string, at::Tensor> dict;
  const auto base = at::arange(12, at::kDouble).reshape({3, 4});
  dict.insert("b", base);
  dict.insert("a", base.t());
  write_file(file, torch::jit::pickle_save(c10::IValue(dict)));
  const auto state = load_state_dict(file);
  EXPECT_EQ(state.keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(bitwise_equal(state.at("b"), base));
  EXPECT_TRUE(bitwise_equal(state.at("a"), base.t()));
}

// --- writing ----------------------------------------------------------------------

TEST(TorchFile, SaveRoundTrip) {
  ScratchDir dir;
  const auto file = dir.path() / "weights.pt";
  const auto big = at::arange(40, at::kFloat).reshape({5, 8});
  TensorDict tensors;
  for (const auto& [name, tensor] : expected_all_dtypes()) tensors.set("z_" + name, tensor);
  tensors.set("transposed", big.t());
  tensors.set("slice", big.slice(0, 1, 3).slice(1, 2, 7));
  tensors.set("a_last", at::tensor({-3.5}, at::kDouble));
  save_tensor_dict(file, tensors);

  EXPECT_EQ(dir.entries(), std::vector<std::string>{"weights.pt"});  // no temporary left
  const auto loaded = load_state_dict(file);
  ASSERT_EQ(loaded.keys(), tensors.keys());
  for (const auto& [name, tensor] : tensors) {
    const auto& back = loaded.at(name);
    EXPECT_TRUE(bitwise_equal(back, tensor)) << name;
    EXPECT_TRUE(back.is_contiguous()) << name;
    // Views are written compactly, not with their whole base storage.
    EXPECT_EQ(back.storage().nbytes(), back.nbytes()) << name;
  }
  // What Python sees: a plain dict, read by LibTorch's unpickler too.
  const auto theirs = torch::jit::pickle_load(read_file(file)).toGenericDict();
  EXPECT_EQ(keys_of(theirs), tensors.keys());
  EXPECT_TRUE(bitwise_equal(theirs.at("slice").toTensor(), big.slice(0, 1, 3).slice(1, 2, 7)));

  // Overwriting keeps a single file with the new content.
  TensorDict other;
  other.set("only", at::ones({2}));
  save_tensor_dict(file, other);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"weights.pt"});
  EXPECT_EQ(load_state_dict(file).keys(), std::vector<std::string>{"only"});
}

TEST(TorchFile, SaveEmptyDict) {
  ScratchDir dir;
  const auto file = dir.path() / "empty.pt";
  save_tensor_dict(file, TensorDict());
  EXPECT_TRUE(load_state_dict(file).empty());
}

TEST(TorchFile, SaveFailuresLeaveNothing) {
  ScratchDir dir;
  TensorDict tensors;
  tensors.set("x", at::ones({3}));
  const auto missing_dir = dir.path() / "missing" / "weights.pt";
  expect_file_error([&] { save_tensor_dict(missing_dir, tensors); }, missing_dir, {"cannot create temporary file"});
  EXPECT_FALSE(fs::exists(dir.path() / "missing"));

  tensors.set("undefined", at::Tensor());
  const auto file = dir.path() / "weights.pt";
  expect_file_error([&] { save_tensor_dict(file, tensors); }, file, {"tensor 'undefined'"});

  // The target is a directory: the rename fails after everything was written.
  const auto target_dir = dir.path() / "target";
  fs::create_directory(target_dir);
  TensorDict valid;
  valid.set("x", at::ones({3}));
  expect_file_error([&] { save_tensor_dict(target_dir, valid); }, target_dir, {"cannot rename"});
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"target"});
}
