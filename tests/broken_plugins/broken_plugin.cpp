// Deliberately broken plugin libraries for the loader tests. One source, one variant
// per library, selected with -DVARIANT_<NAME>. Each must be refused (or, for the
// throwing factory, fail when used) without affecting the other plugins.
#include <ATen/ATen.h>

#include <stdexcept>

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

[[maybe_unused]] void add_detector(ood::Registrar& r, const std::string& name, ood::DetectorFactory factory) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Detector;
  info.name = name;
  info.summary = "test detector";
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
  add_detector(r, "test-feature-mean", [](const ood::Params&, ood::Context&) -> std::shared_ptr<ood::Detector> {
    return std::make_shared<FeatureMean>();
  });
#endif
}

}  // namespace

#if defined(VARIANT_NO_ENTRY)
// Exports an ordinary function, but no `ood_plugin` entry alias.
extern "C" __attribute__((visibility("default"))) int not_a_plugin() { return 42; }
#elif defined(VARIANT_WRONG_ABI) || defined(VARIANT_WRONG_TORCH)
extern "C" const ood::PluginInfo* broken_plugin_info() {
#if defined(VARIANT_WRONG_ABI)
  static const ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION + 1, sizeof(ood::PluginInfo), "wrong-abi", "0", "",
                                    "MIT", TORCH_VERSION, OOD_CXX_ABI_STRING, &register_components};
#else
  static const ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION, sizeof(ood::PluginInfo), "wrong-torch", "0", "",
                                    "MIT", "0.4.1", OOD_CXX_ABI_STRING, &register_components};
#endif
  return &info;
}
BOOST_DLL_ALIAS_SECTIONED(broken_plugin_info, ood_plugin, boostdll)
#else
OOD_PLUGIN(PLUGIN_NAME, "broken test plugin", register_components)
#endif
