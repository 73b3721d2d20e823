#include "test_support.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <torch/csrc/jit/serialization/pickle.h>

#include "ood/core/plugin_loader.hpp"
#include "ood/core/validation.hpp"
#include "ood/error.hpp"

namespace ood::test {

namespace fs = std::filesystem;

fs::path fixtures_dir() {
  const char* dir = std::getenv("OOD_FIXTURES_DIR");
  if (!dir || !*dir) throw std::runtime_error("OOD_FIXTURES_DIR is not set (run the tests through meson test)");
  return dir;
}

fs::path fixture(const std::string& relative) {
  const fs::path p = fixtures_dir() / relative;
  if (!fs::exists(p)) throw std::runtime_error("missing fixture " + p.string());
  return p;
}

namespace {
struct TempRoot {
  fs::path path;
  TempRoot() {
    const char* base = std::getenv("TMPDIR");
    path = fs::path(base && *base ? base : "/tmp") / ("ood-test-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

fs::path temp_dir(const std::string& name) {
  static TempRoot root;
  const fs::path p = root.path / name;
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p);
  return p;
}

c10::Dict<c10::IValue, c10::IValue> load_tensor_dict_file(const std::string& relative) {
  std::ifstream in(fixture(relative), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::jit::pickle_load(bytes).toGenericDict();
}

at::Tensor tensor_of(const c10::Dict<c10::IValue, c10::IValue>& dict, const std::string& key) {
  for (const auto& e : dict)
    if (e.key().toStringRef() == key) return e.value().toTensor();
  throw std::runtime_error("fixture has no tensor '" + key + "'");
}

const core::Registry& registry() {
  static core::Registry* reg = [] {
    auto* r = new core::Registry();
    core::PluginSearchOptions options;
    options.use_environment = false;
    const auto report = core::load_plugins(core::plugin_search_paths(options), *r);
    if (report.loaded.empty()) throw std::runtime_error("no plugins found in the build tree");
    return r;
  }();
  return *reg;
}

namespace {
ComponentSpec validated(Kind kind, const std::string& plugin, const std::string& params_json) {
  using json = nlohmann::ordered_json;
  core::SchemaValidator validator(registry());
  std::vector<core::Diagnostic> diags;
  json component = {{"plugin", plugin}, {"params", json::parse(params_json)}};
  auto normalized = validator.component(component, kind, "/test", diags);
  if (!normalized) {
    std::string msg;
    for (const auto& d : diags) msg += d.to_string() + "\n";
    throw InvalidArgument(msg);
  }
  return ComponentSpec{plugin, Params::from_json_text((*normalized)["params"].dump(), "/test/params"), "/test"};
}
core::BuildContext& context() {
  static core::BuildContext ctx(registry(), 0);
  return ctx;
}
}  // namespace

std::shared_ptr<Detector> make_detector(const std::string& plugin, const std::string& params_json) {
  return context().make_detector(validated(Kind::Detector, plugin, params_json));
}
std::shared_ptr<Model> make_model(const std::string& plugin, const std::string& params_json) {
  return context().make_model(validated(Kind::Model, plugin, params_json));
}
std::shared_ptr<Dataset> make_dataset(const std::string& plugin, const std::string& params_json) {
  return context().make_dataset(validated(Kind::Dataset, plugin, params_json));
}
std::shared_ptr<Augmentation> make_augmentation(const std::string& plugin, const std::string& params_json) {
  return context().make_augmentation(validated(Kind::Augmentation, plugin, params_json));
}
std::shared_ptr<Loss> make_loss(const std::string& plugin, const std::string& params_json) {
  return context().make_loss(validated(Kind::Loss, plugin, params_json));
}

::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, double rtol,
                                     double atol) {
  if (!actual.sizes().equals(expected.sizes()))
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  const at::Tensor a = actual.to(at::kDouble).reshape(-1);
  const at::Tensor b = expected.to(at::kDouble).reshape(-1);
  const at::Tensor nan_mismatch = a.isnan() != b.isnan();
  if (nan_mismatch.any().item<bool>()) {
    const auto i = nan_mismatch.nonzero()[0].item<std::int64_t>();
    return ::testing::AssertionFailure() << "NaN mismatch at " << i << ": " << a[i].item<double>() << " vs "
                                         << b[i].item<double>();
  }
  const at::Tensor both = ~b.isnan();
  const at::Tensor excess = ((a - b).abs() - (atol + rtol * b.abs())).masked_fill(~both, -1);
  const auto worst = excess.argmax().item<std::int64_t>();
  if (excess[worst].item<double>() > 0)
    return ::testing::AssertionFailure() << "element " << worst << ": " << a[worst].item<double>()
                                         << " vs expected " << b[worst].item<double>() << " (rtol " << rtol
                                         << ", atol " << atol << ")";
  return ::testing::AssertionSuccess();
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

CommandResult run_command(const std::string& command) {
  CommandResult result{-1, ""};
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace ood::test

#include "ood/views.hpp"

namespace ood::test {

at::Tensor score_logits(Detector& detector, const at::Tensor& logits) {
  Views views;
  views.set_logits(logits);
  return detector.score(views);
}

const c10::Dict<c10::IValue, c10::IValue>& reference_data() {
  static const auto data = load_tensor_dict_file("reference/data/data.pt");
  return data;
}

std::shared_ptr<Model> reference_model() {
  static const std::shared_ptr<Model> model = [] {
    const std::string weights = fixture("reference/model/wrn_state.pt").string();
    auto m = make_model("wide-resnet", R"({"num_classes": 10, "depth": 16, "widen_factor": 2, "weights": ")" +
                                           weights + R"("})");
    m->set_mode(ModelMode::Eval);
    return m;
  }();
  return model;
}

namespace {
at::Tensor rows(const at::Tensor& t, std::int64_t start, std::int64_t end) {
  return t.defined() ? t.slice(0, start, end) : t;
}
}  // namespace

void fit_on_views(Detector& detector, const at::Tensor& features, const at::Tensor& logits, const at::Tensor& labels,
                  std::int64_t batch_size) {
  at::NoGradGuard no_grad;
  const std::int64_t n = labels.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    Views views;
    if (features.defined()) views.set_features(rows(features, start, end));
    if (logits.defined()) views.set_logits(rows(logits, start, end));
    detector.fit_batch(views, labels.slice(0, start, end));
  }
  detector.finish_fit();
}

at::Tensor score_views(Detector& detector, const at::Tensor& features, const at::Tensor& logits) {
  at::NoGradGuard no_grad;
  Views views;
  if (features.defined()) views.set_features(features);
  if (logits.defined()) views.set_logits(logits);
  return detector.score(views);
}

void fit_on_model(Detector& detector, Model& model, const at::Tensor& x, const at::Tensor& labels,
                  std::int64_t batch_size) {
  detector.attach(model);
  model.set_mode(ModelMode::Eval);
  at::NoGradGuard no_grad;
  const std::int64_t n = x.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    Views views(model, x.slice(0, start, end));
    for (const auto& layer : detector.needs().layers) views.layer(layer);
    detector.fit_batch(views, labels.slice(0, start, end));
  }
  detector.finish_fit();
}

at::Tensor score_on_model(Detector& detector, Model& model, const at::Tensor& x, std::int64_t batch_size) {
  model.set_mode(ModelMode::Eval);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (std::int64_t start = 0; start < x.size(0); start += batch_size) {
    Views views(model, x.slice(0, start, std::min(x.size(0), start + batch_size)));
    parts.push_back(detector.score(views));
  }
  return at::cat(parts);
}

}  // namespace ood::test
