// Deliberately broken plugin libraries for the loader tests. One source, one variant
// per library, selected with -DVARIANT_<NAME>. Each must be refused (or, for the
// throwing factory, fail when used) without affecting the other plugins.
#include <ATen/ATen.h>

#include <csignal>
#include <stdexcept>

#include <unistd.h>

#include "ood/error.hpp"
#include "ood/logit_detector.hpp"
#include "ood/views.hpp"
#include "ood/plugin.hpp"

namespace {

[[maybe_unused]] std::shared_ptr<ood::Detector> working_detector(const ood::Params&, ood::Context&) {
  return std::make_shared<ood::LogitDetector>("test", [](const at::Tensor& z) { return z.sum(1); });
}

// A detector that fits: the mean of the fitting features; scores are distances to it.
// Exercises fitting, saving and loading state through real pipelines.
class FeatureMean final : public ood::Detector {
 public:
  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.features = n.fit = true;
    return n;
  }
  void fit_batch(ood::Views& v, const at::Tensor&) override {
    const at::Tensor f = v.features().to(at::kDouble);
    sum_ = sum_.defined() ? sum_ + f.sum(0) : f.sum(0);
    count_ += f.size(0);
  }
  void finish_fit() override { mean_ = (sum_ / static_cast<double>(count_)).to(at::kFloat); }
  bool is_fitted() const override { return mean_.defined(); }
  at::Tensor score(ood::Views& v) override {
    if (!mean_.defined()) throw ood::StateError("test-feature-mean: not fitted");
    return (v.features() - mean_).norm(2, 1);
  }
  ood::TensorDict state() const override {
    ood::TensorDict d;
    d.set("mean", mean_);
    return d;
  }
  void load_state(const ood::TensorDict& d) override { mean_ = d.at("mean").clone(); }

 private:
  at::Tensor sum_, mean_;
  std::int64_t count_ = 0;
};

// Detectors whose plugin is at fault in one specific way (the host must say so, name
// the plugin file, exit with 1 and keep the other detectors' results).
enum class Fault { ThrowInFit, ThrowInScore, WrongShape, WrongDtype };
class Faulty final : public ood::Detector {
 public:
  explicit Faulty(Fault f) : fault_(f) {}
  ood::DetectorNeeds needs() const override {
    ood::DetectorNeeds n;
    n.logits = true;
    n.fit = fault_ == Fault::ThrowInFit;
    return n;
  }
  void fit_batch(ood::Views&, const at::Tensor&) override { throw std::runtime_error("fit_batch blew up"); }
  bool is_fitted() const override { return fault_ != Fault::ThrowInFit; }
  at::Tensor score(ood::Views& v) override {
    const at::Tensor z = v.logits();
    switch (fault_) {
      case Fault::ThrowInScore: throw std::runtime_error("score blew up");
      case Fault::WrongShape: return z;  // [N, C] instead of [N]
      case Fault::WrongDtype: return z.argmax(1);  // int64
      default: return z.sum(1);
    }
  }

 private:
  Fault fault_;
};

[[maybe_unused]] void add_detector(ood::Registrar& r, const std::string& name, ood::DetectorFactory factory,
                                   std::vector<ood::ParamSpec> params = {}) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = name;
  info.summary = "test detector";
  info.params = std::move(params);
  r.add_detector(info, std::move(factory));
}

[[maybe_unused]] void register_components(ood::Registrar& r) {
#if defined(VARIANT_THROWING_FACTORY)
  add_detector(r, "throwing-factory", [](const ood::Params&, ood::Context&) -> std::shared_ptr<ood::Detector> {
    throw std::runtime_error("this factory always fails");
  });
#elif defined(VARIANT_DUPLICATE)
  add_detector(r, "energy-based", working_detector);  // clashes with the real plugin
#elif defined(VARIANT_THROWING_REGISTRATION)
  add_detector(r, "half-registered", working_detector);
  throw std::runtime_error("registration breaks halfway");
#else
  add_detector(r, "test-good", working_detector);
  for (auto [name, fault] : {std::pair{"test-throws-in-fit", Fault::ThrowInFit},
                             std::pair{"test-throws-in-score", Fault::ThrowInScore},
                             std::pair{"test-wrong-shape", Fault::WrongShape},
                             std::pair{"test-wrong-dtype", Fault::WrongDtype}})
    add_detector(r, name, [fault = fault](const ood::Params&, ood::Context&) -> std::shared_ptr<ood::Detector> {
      return std::make_shared<Faulty>(fault);
    });
  // Declares "t" but reads "temperature".
  add_detector(
      r, "test-undeclared-param",
      [](const ood::Params& p, ood::Context&) -> std::shared_ptr<ood::Detector> {
        const double t = p.get_float("temperature");
        return std::make_shared<ood::LogitDetector>("x", [t](const at::Tensor& z) { return z.sum(1) * t; });
      },
      {ood::ParamSpec::real("t", "temperature").default_value(1.0)});
  add_detector(r, "test-feature-mean", [](const ood::Params&, ood::Context&) -> std::shared_ptr<ood::Detector> {
    return std::make_shared<FeatureMean>();
  });
#endif
}

}  // namespace

#if defined(VARIANT_CRASH_ON_LOAD)
// Dies while being loaded (a static initialiser), before any check could run.
__attribute__((constructor)) static void crash_on_load() { ::raise(SIGSEGV); }
#elif defined(VARIANT_HANG_ON_LOAD)
// Never finishes loading.
__attribute__((constructor)) static void hang_on_load() {
  for (;;) ::pause();
}
#endif

#if defined(VARIANT_NO_ENTRY)
// Exports an ordinary function, but no `ood_plugin` entry alias.
extern "C" __attribute__((visibility("default"))) int not_a_plugin() { return 42; }
#elif defined(VARIANT_WRONG_ABI) || defined(VARIANT_WRONG_TORCH) || defined(VARIANT_WRONG_TORCH_BUILD)
extern "C" const ood::PluginInfo* broken_plugin_info() {
#if defined(VARIANT_WRONG_ABI)
  static const ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION + 1, sizeof(ood::PluginInfo), "wrong-abi", "0", "",
                                    "MIT", TORCH_VERSION, OOD_CXX_ABI_STRING, &register_components,
                                    OOD_TORCH_BUILD_STRING};
#elif defined(VARIANT_WRONG_TORCH)
  static const ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION, sizeof(ood::PluginInfo), "wrong-torch", "0", "",
                                    "MIT", "0.4.1", OOD_CXX_ABI_STRING, &register_components,
                                    OOD_TORCH_BUILD_STRING};
#else
  // The same LibTorch version string, but another build of it.
  static const ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION, sizeof(ood::PluginInfo), "wrong-torch-build", "0", "",
                                    "MIT", TORCH_VERSION, OOD_CXX_ABI_STRING, &register_components,
                                    TORCH_VERSION "+cuda-other cxx11_abi=1"};
#endif
  return &info;
}
BOOST_DLL_ALIAS_SECTIONED(broken_plugin_info, ood_plugin, boostdll)
#else
OOD_PLUGIN(PLUGIN_NAME, "broken test plugin", register_components)
#endif
