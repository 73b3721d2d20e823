#pragma once
// The plugin contract.
//
// A plugin library exports exactly one symbol, `ood_plugin`, a Boost.DLL alias in the
// `boostdll` section (so the loader recognises plugin files without running their
// code). It points to a C-linkage function returning a plain PluginInfo struct. After
// dlopen (which runs the library's static initialisers, so plugins must not do work
// in them) the loader checks, in this order and before calling anything else:
//   1. abi_version == OOD_PLUGIN_ABI_VERSION (exact match, like LLVM pass plugins);
//   2. struct_size >= the size of the fields this host reads (append-only growth);
//   3. torch_version, torch_build and cxx_abi equal the host's (LibTorch's C++ ABI is
//      not stable, and a CUDA and a CPU build of one version are different libraries);
//   4. name equals the file's name without the "ood-" prefix and ".so" suffix.
// Only then does it call register_components(), which declares the components. No
// static registrars: they would run at dlopen, before the checks.
//
// Usage, in a plugin's single .cpp file:
//   static void register_all(ood::Registrar& r) { r.add_detector(info, factory); }
//   OOD_PLUGIN("energy-based", "Energy-based OOD detector", register_all)
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/version.h>
// Whether the LibTorch headers belong to a CUDA (or ROCm) build: only such builds
// install ATen/cuda/CUDAConfig.h with AT_CUDA_ENABLED() / AT_ROCM_ENABLED().
#if __has_include(<ATen/cuda/CUDAConfig.h>)
#include <ATen/cuda/CUDAConfig.h>
#endif

#include "ood/export.hpp"
#include "ood/kind.hpp"
#include "ood/params.hpp"

// Bumped whenever an SDK interface, struct layout or the meaning of a field changes.
// 3: PluginInfo::torch_build.
#define OOD_PLUGIN_ABI_VERSION 3u

#define OOD_DETAIL_STR2(x) #x
#define OOD_DETAIL_STR(x) OOD_DETAIL_STR2(x)
// The C++ ABI a library was compiled for: the Itanium ABI version and libstdc++'s
// dual-ABI switch (std::string and std::list layout).
#define OOD_CXX_ABI_STRING                                       \
  "gxx_abi=" OOD_DETAIL_STR(__GXX_ABI_VERSION) " cxx11_abi=" OOD_DETAIL_STR( \
      _GLIBCXX_USE_CXX11_ABI)

// Which LibTorch build the headers describe, beyond its version string: the device
// backend it was compiled for. TORCH_VERSION alone says "1.13.0" for a CPU and a CUDA
// build alike, yet their libraries differ (a CUDA plugin needs libtorch_cuda).
#if defined(AT_ROCM_ENABLED)
#if AT_ROCM_ENABLED()
#define OOD_DETAIL_TORCH_BACKEND "rocm"
#endif
#endif
#if !defined(OOD_DETAIL_TORCH_BACKEND) && defined(AT_CUDA_ENABLED)
#if AT_CUDA_ENABLED()
#define OOD_DETAIL_TORCH_BACKEND "cuda"
#endif
#endif
#ifndef OOD_DETAIL_TORCH_BACKEND
#define OOD_DETAIL_TORCH_BACKEND "cpu"
#endif
/// E.g. "1.13.0+cpu cxx11_abi=1": version, backend and libstdc++'s string ABI.
#define OOD_TORCH_BUILD_STRING \
  TORCH_VERSION "+" OOD_DETAIL_TORCH_BACKEND " cxx11_abi=" OOD_DETAIL_STR(_GLIBCXX_USE_CXX11_ABI)

#ifndef OOD_PLUGIN_VERSION
#define OOD_PLUGIN_VERSION "0.0.0"
#endif

namespace ood {

class Augmentation;
class Context;
class Dataset;
class Detector;
class Loss;
class Model;
class Registrar;

extern "C" {
/// Plain data, read by the loader before it trusts anything else in the library.
/// Fields are only ever appended.
struct PluginInfo {
  std::uint32_t abi_version;
  std::uint32_t struct_size;
  const char* name;
  const char* version;
  const char* summary;
  const char* license;
  const char* torch_version;
  const char* cxx_abi;
  void (*register_components)(Registrar& registrar);
  // ABI 3
  const char* torch_build;  // OOD_TORCH_BUILD_STRING
};
}

/// Everything a component declares about itself.
struct ComponentInfo {
  Kind kind = Kind::Detector;
  std::string name;     // kebab-case of pytorch-ood's class name: "energy-based"
  std::string summary;  // one line
  std::string paper;    // reference of the method's paper ("" when none)
  int year = 0;         // the paper's year (0 when none)
  std::string doc;      // longer description: formula, deviations from pytorch-ood
  std::vector<ParamSpec> params;
  /// Optional checks across parameters that the schema cannot express (e.g.
  /// "depth - 4 must be divisible by 6"). Must be cheap and without side effects:
  /// `ood validate` runs it. Throws ood::InvalidArgument naming params.pointer(...).
  std::function<void(const Params&)> check;
};

using ModelFactory = std::function<std::shared_ptr<Model>(const Params&, Context&)>;
using DetectorFactory = std::function<std::shared_ptr<Detector>(const Params&, Context&)>;
using LossFactory = std::function<std::shared_ptr<Loss>(const Params&, Context&)>;
using DatasetFactory = std::function<std::shared_ptr<Dataset>(const Params&, Context&)>;
using AugmentationFactory =
    std::function<std::shared_ptr<Augmentation>(const Params&, Context&)>;

/// Receives the components of a plugin. `info.kind` must match the method called.
/// Throws ood::Error for a duplicate name or an invalid declaration.
class OOD_SDK_API Registrar {
 public:
  virtual ~Registrar();
  virtual void add_model(ComponentInfo info, ModelFactory factory) = 0;
  virtual void add_detector(ComponentInfo info, DetectorFactory factory) = 0;
  virtual void add_loss(ComponentInfo info, LossFactory factory) = 0;
  virtual void add_dataset(ComponentInfo info, DatasetFactory factory) = 0;
  virtual void add_augmentation(ComponentInfo info, AugmentationFactory factory) = 0;
};

}  // namespace ood

// Defines the plugin's entry point. Must appear exactly once per plugin library.
#include <boost/dll/alias.hpp>

#define OOD_PLUGIN_INFO_DEFINITION(NAME, SUMMARY, LICENSE, REGISTER_FN)                       \
  extern "C" const ::ood::PluginInfo* ood_plugin_info_v1() {                                  \
    static const ::ood::PluginInfo info{OOD_PLUGIN_ABI_VERSION,                               \
                                        static_cast<std::uint32_t>(sizeof(::ood::PluginInfo)), \
                                        NAME,                                                 \
                                        OOD_PLUGIN_VERSION,                                   \
                                        SUMMARY,                                              \
                                        LICENSE,                                              \
                                        TORCH_VERSION,                                        \
                                        OOD_CXX_ABI_STRING,                                   \
                                        &REGISTER_FN,                                         \
                                        OOD_TORCH_BUILD_STRING};                              \
    return &info;                                                                             \
  }                                                                                           \
  BOOST_DLL_ALIAS_SECTIONED(ood_plugin_info_v1, ood_plugin, boostdll)

#define OOD_PLUGIN(NAME, SUMMARY, REGISTER_FN) \
  OOD_PLUGIN_INFO_DEFINITION(NAME, SUMMARY, "MIT", REGISTER_FN)
