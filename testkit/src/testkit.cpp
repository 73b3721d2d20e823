// The plugin test kit (testkit/include/ood/testkit.hpp). Loading and validation are
// the host's own (libood-core, linked in statically and not exported), so a plugin
// that passes here is loaded and validated the same way by `ood`.
#include "ood/testkit.hpp"

#include <dlfcn.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <sstream>

#include "ood/core/build_context.hpp"
#include "ood/core/plugin_loader.hpp"
#include "ood/core/registry.hpp"
#include "ood/core/validation.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace ood::testkit {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

Failure::~Failure() = default;

// ---------------------------------------------------------------- Plugins

struct Plugins::Impl {
  core::Registry registry;
  std::unique_ptr<core::BuildContext> context;

  ComponentSpec validated(Kind kind, const std::string& name, const std::string& params_json) const {
    json params;
    try {
      params = json::parse(params_json);
    } catch (const json::exception& e) {
      throw InvalidArgument("/test/params: not valid JSON: " + std::string(e.what()));
    }
    const json component = {{"plugin", name}, {"params", params}};
    std::vector<core::Diagnostic> diagnostics;
    const auto normalized = core::SchemaValidator(registry).component(component, kind, "/test", diagnostics);
    if (!normalized) {
      std::string message;
      for (const auto& d : diagnostics) message += (message.empty() ? "" : "\n") + d.to_string();
      throw InvalidArgument(message.empty() ? "/test: invalid component" : message);
    }
    return ComponentSpec{name, Params::from_json_text((*normalized)["params"].dump(), "/test/params"), "/test"};
  }
};

Plugins::Plugins(const std::filesystem::path& path, std::uint64_t seed)
    : Plugins(std::vector<fs::path>{path}, seed) {}

Plugins::Plugins(const std::vector<fs::path>& paths, std::uint64_t seed) : impl_(std::make_unique<Impl>()) {
  for (const auto& path : paths) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Error(path.string() + ": no such plugin file or directory");
    const auto files = core::find_plugin_files({path});
    if (files.empty())
      throw Error(path.string() + ": no plugin file in it (plugin files are named ood-NAME.so)");
    core::PluginLoadReport report;
    for (const auto& file : files) core::load_plugin_file(file, impl_->registry, report);
    // A test loads the plugin it tests: any refusal is the failure to report.
    if (!report.refused.empty()) throw Error(report.refused.front().reason);
  }
  impl_->context = std::make_unique<core::BuildContext>(impl_->registry, seed);
}

Plugins::~Plugins() = default;

std::vector<ComponentEntry> Plugins::components() const {
  std::vector<ComponentEntry> out;
  for (const auto* c : impl_->registry.list())
    out.push_back({c->info.kind, c->info.name, c->info.summary, c->plugin, c->plugin_file});
  return out;
}

const ComponentInfo& Plugins::info(Kind kind, const std::string& name) const {
  const auto* c = impl_->registry.find(kind, name);
  if (!c) {
    std::string known;
    for (const auto& n : impl_->registry.names(kind)) known += (known.empty() ? "" : ", ") + n;
    throw InvalidArgument("no " + std::string(to_string(kind)) + " named '" + name + "' in the loaded plugins" +
                          (known.empty() ? " (they have none of that kind)" : " (they have: " + known + ")"));
  }
  return c->info;
}

std::string Plugins::validated_params(Kind kind, const std::string& name, const std::string& params_json) const {
  return impl_->validated(kind, name, params_json).params.to_json_text();
}

Params Plugins::params(Kind kind, const std::string& name, const std::string& params_json) const {
  return impl_->validated(kind, name, params_json).params;
}

std::shared_ptr<Detector> Plugins::make_detector(const std::string& name, const std::string& params_json) {
  return impl_->context->make_detector(impl_->validated(Kind::Detector, name, params_json));
}
std::shared_ptr<Model> Plugins::make_model(const std::string& name, const std::string& params_json) {
  return impl_->context->make_model(impl_->validated(Kind::Model, name, params_json));
}
std::shared_ptr<Loss> Plugins::make_loss(const std::string& name, const std::string& params_json) {
  return impl_->context->make_loss(impl_->validated(Kind::Loss, name, params_json));
}
std::shared_ptr<Dataset> Plugins::make_dataset(const std::string& name, const std::string& params_json) {
  return impl_->context->make_dataset(impl_->validated(Kind::Dataset, name, params_json));
}
std::shared_ptr<Augmentation> Plugins::make_augmentation(const std::string& name, const std::string& params_json) {
  return impl_->context->make_augmentation(impl_->validated(Kind::Augmentation, name, params_json));
}

Context& Plugins::context() { return *impl_->context; }

fs::path installed_plugins_dir() {
  // libood-testkit.so is installed in <libdir>, the plugins in <libdir>/ood/plugins
  // (plugin_install_subdir in meson.build).
  Dl_info info{};
  if (!::dladdr(reinterpret_cast<void*>(&installed_plugins_dir), &info) || !info.dli_fname)
    throw Error("cannot tell where libood-testkit.so was loaded from");
  std::error_code ec;
  const fs::path library = fs::weakly_canonical(info.dli_fname, ec);
  return (ec ? fs::path(info.dli_fname) : library).parent_path() / "ood" / "plugins";
}

// ---------------------------------------------------------------- views

namespace {
at::Tensor rows(const at::Tensor& t, std::int64_t start, std::int64_t end) {
  return t.defined() ? t.slice(0, start, end) : t;
}
}  // namespace

at::Tensor score(Detector& detector, const at::Tensor& logits, const at::Tensor& features) {
  at::NoGradGuard no_grad;
  Views views;
  if (logits.defined()) views.set_logits(logits);
  if (features.defined()) views.set_features(features);
  return detector.score(views);
}

at::Tensor score_logits(Detector& detector, const at::Tensor& logits) { return score(detector, logits, {}); }
at::Tensor score_features(Detector& detector, const at::Tensor& features) { return score(detector, {}, features); }

void fit(Detector& detector, const at::Tensor& logits, const at::Tensor& features, const at::Tensor& labels,
         std::int64_t batch_size) {
  check(batch_size >= 1, "fit: batch_size must be >= 1");
  at::NoGradGuard no_grad;
  const std::int64_t n = labels.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    Views views;
    if (logits.defined()) views.set_logits(rows(logits, start, end));
    if (features.defined()) views.set_features(rows(features, start, end));
    detector.fit_batch(views, labels.slice(0, start, end));
  }
  detector.finish_fit();
}

void fit_on_model(Detector& detector, Model& model, const at::Tensor& inputs, const at::Tensor& labels,
                  std::int64_t batch_size) {
  check(batch_size >= 1, "fit_on_model: batch_size must be >= 1");
  detector.attach(model);
  model.set_mode(ModelMode::Eval);
  at::NoGradGuard no_grad;
  const std::int64_t n = inputs.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    Views views(model, inputs.slice(0, start, end));
    views.prefetch_layers(detector.needs().layers);
    detector.fit_batch(views, labels.slice(0, start, end));
  }
  detector.finish_fit();
}

at::Tensor score_on_model(Detector& detector, Model& model, const at::Tensor& inputs, std::int64_t batch_size) {
  check(batch_size >= 1, "score_on_model: batch_size must be >= 1");
  model.set_mode(ModelMode::Eval);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (std::int64_t start = 0; start < inputs.size(0); start += batch_size) {
    Views views(model, inputs.slice(0, start, std::min(inputs.size(0), start + batch_size)));
    views.prefetch_layers(detector.needs().layers);
    parts.push_back(detector.score(views));
  }
  check(!parts.empty(), "score_on_model: no inputs");
  return at::cat(parts);
}

at::Tensor loss_value(Loss& loss, const at::Tensor& logits, const at::Tensor& features, const at::Tensor& targets) {
  at::AutoGradMode grad(true);
  Views views;
  if (logits.defined()) views.set_logits(logits);
  if (features.defined()) views.set_features(features);
  return loss.forward(views, targets);
}

Sample apply(const Augmentation& augmentation, Sample sample, std::uint64_t seed) {
  at::Generator generator = make_generator(seed);
  return augmentation.apply(std::move(sample), generator);
}

// ---------------------------------------------------------------- LinearModel

LinearModel::LinearModel(at::Tensor weight, at::Tensor bias) {
  check(weight.defined() && weight.dim() == 2 && weight.is_floating_point(),
        "LinearModel: weight must be a floating tensor [C, D]");
  check(bias.defined() && bias.dim() == 1 && bias.size(0) == weight.size(0),
        "LinearModel: bias must be a tensor [C] with C = weight.size(0)");
  weight_ = weight.detach().clone().requires_grad_(true);
  bias_ = bias.detach().to(weight.scalar_type()).clone().requires_grad_(true);
}

std::shared_ptr<LinearModel> LinearModel::random(std::int64_t num_classes, std::int64_t feature_dim,
                                                 std::uint64_t seed) {
  check(num_classes >= 1 && feature_dim >= 1, "LinearModel::random: sizes must be >= 1");
  at::Generator gen = make_generator(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(feature_dim));
  auto uniform = [&](at::IntArrayRef shape) {
    return at::empty(shape, at::kFloat).uniform_(-bound, bound, gen);
  };
  return std::make_shared<LinearModel>(uniform({num_classes, feature_dim}), uniform({num_classes}));
}

LinearModel::~LinearModel() = default;

at::Tensor LinearModel::features(const at::Tensor& inputs) {
  if (inputs.dim() != 2 || inputs.size(1) != weight_.size(1))
    throw ShapeError("LinearModel: inputs must be features [N, " + std::to_string(weight_.size(1)) + "], got " +
                     std::to_string(inputs.dim()) + " dimensions");
  return inputs;
}

at::Tensor LinearModel::head(const at::Tensor& features) { return at::linear(features, weight_, bias_); }

std::optional<LinearHead> LinearModel::linear_head() { return LinearHead{weight_.detach(), bias_.detach()}; }

void LinearModel::set_mode(ModelMode mode) { mode_ = mode; }
ModelMode LinearModel::mode() const { return mode_; }

void LinearModel::to(at::Device device) {
  weight_ = weight_.detach().to(device).requires_grad_(true);
  bias_ = bias_.detach().to(device).requires_grad_(true);
}

at::Device LinearModel::device() const { return weight_.device(); }

std::vector<at::Tensor> LinearModel::parameters() { return {weight_, bias_}; }

TensorDict LinearModel::state_dict() const {
  TensorDict out;
  out.set("fc.weight", weight_.detach());
  out.set("fc.bias", bias_.detach());
  return out;
}

void LinearModel::load_state_dict(const TensorDict& state) {
  if (state.size() != 2 || !state.contains("fc.weight") || !state.contains("fc.bias"))
    throw InvalidArgument("LinearModel: expected a state dict of fc.weight and fc.bias");
  const at::Tensor& w = state.at("fc.weight");
  const at::Tensor& b = state.at("fc.bias");
  if (!w.sizes().equals(weight_.sizes()) || !b.sizes().equals(bias_.sizes()))
    throw InvalidArgument("LinearModel: fc.weight or fc.bias has another shape than the model's");
  at::NoGradGuard no_grad;
  weight_.copy_(w);
  bias_.copy_(b);
}

ModelInfo LinearModel::info() const {
  ModelInfo info;
  info.num_classes = weight_.size(0);
  info.feature_dim = weight_.size(1);
  info.input_shape = {weight_.size(1)};
  return info;
}

// ---------------------------------------------------------------- checks

void fail(const std::string& message) { throw Failure(message); }

void check(bool condition, const std::string& message) {
  if (!condition) fail(message);
}

namespace {
std::string shape_text(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

void check_close(const at::Tensor& actual, const at::Tensor& expected, double rtol, double atol,
                 const std::string& what) {
  check(actual.defined(), what + ": undefined tensor");
  check(expected.defined(), what + ": undefined expected tensor");
  if (!actual.sizes().equals(expected.sizes()))
    fail(what + ": shape " + shape_text(actual) + ", expected " + shape_text(expected));
  if (actual.numel() == 0) return;
  const at::Tensor a = actual.detach().to(at::kCPU, at::kDouble).reshape(-1);
  const at::Tensor b = expected.detach().to(at::kCPU, at::kDouble).reshape(-1);
  const at::Tensor nan_mismatch = a.isnan() != b.isnan();
  if (nan_mismatch.any().item<bool>()) {
    const auto i = nan_mismatch.nonzero()[0].item<std::int64_t>();
    fail(what + ": element " + std::to_string(i) + " is " + std::to_string(a[i].item<double>()) + ", expected " +
         std::to_string(b[i].item<double>()) + " (NaN mismatch)");
  }
  const at::Tensor excess = ((a - b).abs() - (atol + rtol * b.abs())).masked_fill(b.isnan(), -1);
  const auto worst = excess.argmax().item<std::int64_t>();
  if (excess[worst].item<double>() > 0) {
    std::ostringstream s;
    s.precision(9);
    s << what << ": element " << worst << " is " << a[worst].item<double>() << ", expected "
      << b[worst].item<double>() << " (rtol " << rtol << ", atol " << atol << ")";
    fail(s.str());
  }
}

void check_scores(const at::Tensor& scores, std::int64_t rows, bool allow_nonfinite) {
  check(scores.defined(), "scores: undefined tensor");
  check(scores.is_floating_point(), "scores: expected a floating tensor, got " + std::string(scores.dtype().name()));
  if (scores.dim() != 1 || scores.size(0) != rows)
    fail("scores: expected shape [" + std::to_string(rows) + "], got " + shape_text(scores));
  if (!allow_nonfinite && rows > 0 && !at::isfinite(scores).all().item<bool>())
    fail("scores: not all finite");
}

void check_dataset(const Dataset& dataset, std::int64_t samples) {
  const std::int64_t size = dataset.size();
  check(size >= 1, "dataset: size() is " + std::to_string(size) + ", expected >= 1");
  const DatasetInfo info = dataset.info();
  const at::Tensor labels = dataset.labels();
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == size && labels.scalar_type() == at::kLong,
        "dataset: labels() must be int64 [" + std::to_string(size) + "]");
  for (std::int64_t i = 0; i < std::min(size, samples); ++i) {
    const Sample a = dataset.get(i), b = dataset.get(i);
    const std::string which = "dataset: sample " + std::to_string(i);
    check(a.input.defined() && a.target.defined(), which + ": undefined input or target");
    check_close(a.input, b.input, 0, 0, which + " (read twice)");
    if (!info.input_shape.empty() && !a.input.sizes().equals(info.input_shape))
      fail(which + ": shape " + shape_text(a.input) + ", info().input_shape says otherwise");
    if (info.task == Task::Classification)
      check(a.label() == labels[i].item<std::int64_t>(), which + ": label differs from labels()[" +
                                                             std::to_string(i) + "]");
  }
}

// ---------------------------------------------------------------- Suite

Suite::Suite(std::string name) : name_(std::move(name)) {}

Suite& Suite::add(std::string name, std::function<void()> body) {
  cases_.emplace_back(std::move(name), std::move(body));
  return *this;
}

int Suite::run(int argc, char** argv) const {
  std::string filter;
  for (int i = 1; i < argc && argv; ++i)
    if (std::string_view(argv[i]).rfind("--filter=", 0) == 0) filter = argv[i] + 9;
  int passed = 0, failed = 0;
  for (const auto& [name, body] : cases_) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    try {
      body();
      ++passed;
      std::cout << "ok   " << name_ << ": " << name << std::endl;
    } catch (const std::exception& e) {
      ++failed;
      std::cout << "FAIL " << name_ << ": " << name << ": " << e.what() << std::endl;
    } catch (...) {
      ++failed;
      std::cout << "FAIL " << name_ << ": " << name << ": an exception that is not a std::exception" << std::endl;
    }
  }
  std::cout << name_ << ": " << passed << " passed, " << failed << " failed" << std::endl;
  return failed == 0 && passed > 0 ? 0 : 1;
}

}  // namespace ood::testkit
