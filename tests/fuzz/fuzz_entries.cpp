#include "fuzz_entries.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ood/core/pipeline.hpp"
#include "ood/core/registry.hpp"
#include "ood/error.hpp"
#include "ood/io/archive.hpp"
#include "ood/io/idx.hpp"
#include "ood/io/image.hpp"
#include "ood/io/mat.hpp"
#include "ood/io/numpy.hpp"
#include "ood/io/python_pickle.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::fuzz {
namespace {

namespace fs = std::filesystem;

// Schemas like the shipped plugins' (nested components included), so the validator
// sees realistic documents; the factories are never called.
const core::Registry& fuzz_registry() {
  static const core::Registry* registry = [] {
    auto* owned = new core::Registry;  // lives as long as the process
    core::Registry& r = *owned;
    r.begin_plugin("fuzz", "");
    auto info = [](Kind kind, const char* name, std::vector<ParamSpec> params) {
      ComponentInfo i;
      i.kind = kind;
      i.name = name;
      i.summary = "fuzzing stand-in";
      i.params = std::move(params);
      return i;
    };
    r.add_model(info(Kind::Model, "wide-resnet",
                     {ParamSpec::integer("num_classes", "classes").default_value(10).min(1),
                      ParamSpec::integer("depth", "depth").default_value(40).min(10),
                      ParamSpec::integer("widen_factor", "width").default_value(2).min(1),
                      ParamSpec::path("weights", "state dict").optional()}),
                [](const Params&, Context&) -> std::shared_ptr<Model> { return nullptr; });
    r.add_detector(info(Kind::Detector, "max-softmax", {ParamSpec::real("t", "temperature").default_value(1.0).min(0.0, true)}),
                   [](const Params&, Context&) -> std::shared_ptr<Detector> { return nullptr; });
    r.add_detector(info(Kind::Detector, "energy-based", {ParamSpec::real("t", "temperature").default_value(1.0).min(0.0, true)}),
                   [](const Params&, Context&) -> std::shared_ptr<Detector> { return nullptr; });
    r.add_loss(info(Kind::Loss, "cross-entropy", {}),
               [](const Params&, Context&) -> std::shared_ptr<Loss> { return nullptr; });
    r.add_dataset(info(Kind::Dataset, "tensor-file",
                       {ParamSpec::path("path", "file"), ParamSpec::string("inputs", "key").default_value("x"),
                        ParamSpec::string("labels", "key").default_value("y")}),
                  [](const Params&, Context&) -> std::shared_ptr<Dataset> { return nullptr; });
    r.add_dataset(info(Kind::Dataset, "uniform-noise", {ParamSpec::integer("size", "samples").default_value(100).min(1)}),
                  [](const Params&, Context&) -> std::shared_ptr<Dataset> { return nullptr; });
    r.add_dataset(info(Kind::Dataset, "class-filter",
                       {ParamSpec::component("dataset", Kind::Dataset, "base"),
                        ParamSpec::list("classes", ParamType::Int, "kept").items(1)}),
                  [](const Params&, Context&) -> std::shared_ptr<Dataset> { return nullptr; });
    r.add_augmentation(info(Kind::Augmentation, "normalize",
                            {ParamSpec::list("mean", ParamType::Float, "mean").default_value(std::vector<double>{0.5}),
                             ParamSpec::list("std", ParamType::Float, "std").default_value(std::vector<double>{0.5})}),
                       [](const Params&, Context&) -> std::shared_ptr<Augmentation> { return nullptr; });
    r.commit_plugin();
    return owned;
  }();
  return *registry;
}

// One scratch file per process (libFuzzer runs one input at a time).
fs::path scratch(const char* suffix) {
  return fs::temp_directory_path() / ("ood-fuzz-" + std::to_string(::getpid()) + suffix);
}

void write(const fs::path& file, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

int pipeline(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto document = core::parse_json_text(text, "fuzz.json");
    (void)core::parse_pipeline(document, fuzz_registry(), "fuzz.json");
  } catch (const ood::Error&) {
    // The expected outcome of bad input: one clear message.
  }
  return 0;
}

int torch_file(const std::uint8_t* data, std::size_t size) {
  const fs::path file = scratch(".pt");
  write(file, data, size);
  try {
    (void)io::load_torch_file(file);
  } catch (const ood::Error&) {
  }
  try {
    (void)io::load_state_dict(file);
  } catch (const ood::Error&) {
  }
  std::error_code ec;
  fs::remove(file, ec);
  return 0;
}

int idx(const std::uint8_t* data, std::size_t size) {
  try {
    (void)io::parse_idx(std::vector<std::uint8_t>(data, data + size), "fuzz.idx");
  } catch (const ood::Error&) {
  }
  const fs::path file = scratch(".idx.gz");
  write(file, data, size);
  try {
    (void)io::read_idx(file);
  } catch (const ood::Error&) {
  }
  std::error_code ec;
  fs::remove(file, ec);
  return 0;
}

int archive(const std::uint8_t* data, std::size_t size) {
  const fs::path file = scratch(".archive");
  const fs::path out = scratch(".extracted");
  write(file, data, size);
  io::ExtractLimits limits;
  limits.max_bytes = 64 << 20;  // a bomb is refused, not written to the fuzzing disk
  limits.max_entries = 10000;
  try {
    (void)io::extract_archive(file, out, limits);
  } catch (const ood::Error&) {
  }
  try {
    for (const auto& name : io::list_archive(file)) (void)io::read_archive_member(file, name, 64 << 20);
  } catch (const ood::Error&) {
  }
  try {
    io::decompress_file(file, out / "decompressed", limits);
  } catch (const ood::Error&) {
  }
  std::error_code ec;
  fs::remove(file, ec);
  fs::remove_all(out, ec);
  return 0;
}

int image(const std::uint8_t* data, std::size_t size) {
  for (const auto mode : {io::ImageMode::Keep, io::ImageMode::Grey, io::ImageMode::Rgb}) {
    try {
      (void)io::decode_image(data, size, "fuzz.img", mode, 1 << 22);
    } catch (const ood::Error&) {
    }
  }
  return 0;
}

int numpy(const std::uint8_t* data, std::size_t size) {
  try {
    (void)io::parse_npy(data, size, "fuzz.npy");
  } catch (const ood::Error&) {
  }
  // The same bytes as a .npz (a zip of .npy members).
  const fs::path file = scratch(".npz");
  write(file, data, size);
  try {
    for (const auto& key : io::npz_keys(file)) (void)io::read_npz(file, key);
  } catch (const ood::Error&) {
  }
  std::error_code ec;
  fs::remove(file, ec);
  return 0;
}

int pickle(const std::uint8_t* data, std::size_t size) {
  try {
    (void)io::parse_python_pickle(data, size, "fuzz.pickle");
  } catch (const ood::Error&) {
  }
  return 0;
}

int mat(const std::uint8_t* data, std::size_t size) {
  const fs::path file = scratch(".mat");
  write(file, data, size);
  for (const char* name : {"X", "y", "data"}) {
    try {
      (void)io::read_mat_variable(file, name);
    } catch (const ood::Error&) {
    }
  }
  std::error_code ec;
  fs::remove(file, ec);
  return 0;
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"pipeline", pipeline}, {"torch_file", torch_file}, {"idx", idx},
                                          {"archive", archive},   {"image", image},           {"numpy", numpy},
                                          {"pickle", pickle},     {"mat", mat}};
  return all;
}

}  // namespace ood::fuzz
