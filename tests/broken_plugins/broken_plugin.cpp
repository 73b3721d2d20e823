// Deliberately broken plugin libraries for the loader tests. One source, one variant
// per library, selected with -DVARIANT_<NAME>. Each must be refused (or, for the
// throwing factory, fail when used) without affecting the other plugins.
#include <ATen/ATen.h>

#include <stdexcept>

#include "ood/logit_detector.hpp"
#include "ood/plugin.hpp"

namespace {

[[maybe_unused]] std::shared_ptr<ood::Detector> working_detector(const ood::Params&, ood::Context&) {
  return std::make_shared<ood::LogitDetector>("test", [](const at::Tensor& z) { return z.sum(1); });
}

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
