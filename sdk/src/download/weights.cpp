#include "ood/download/weights.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "ood/error.hpp"
#include "ood/log.hpp"

namespace ood::download {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// pytorch-ood 0.2's transform_for("cifar10-pt"/"cifar100-pt"): Resize((32, 32)), ToRGB,
// ToTensor, Normalize with CIFAR's mean and std.
Preprocessing cifar(const std::string& source) {
  return {{32, 32}, 0, {125.3 / 255, 123.0 / 255, 113.9 / 255}, {63.0 / 255, 62.1 / 255, 66.7 / 255}, true, "bilinear",
          source};
}
Preprocessing halves(const std::string& source) {
  return {{32, 32}, 0, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, true, "bilinear", source};
}
// torchvision 0.14's ImageClassification(crop_size=224, resize_size=...): resize the
// shorter side (bilinear, antialiased), centre crop, ImageNet mean and std.
Preprocessing imagenet(std::int64_t resize) {
  return {{resize}, 224, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}, false, "bilinear",
          "torchvision 0.14 ImageClassification(crop_size=224, resize_size=" + std::to_string(resize) + ")"};
}

WeightsEntry wrn(const std::string& key, const std::string& url, int classes, int widen, const std::string& what,
                 std::optional<Preprocessing> pre) {
  WeightsEntry e;
  e.name = key;
  e.architecture = "wide-resnet";
  e.model_params = "{\"depth\": 40, \"widen_factor\": " + std::to_string(widen) +
                   (classes > 0 ? ", \"num_classes\": " + std::to_string(classes) : std::string()) + "}";
  e.url = url;
  e.file_name = "wrn-" + key + ".pt";  // pytorch-ood's cache name
  e.description = "pytorch-ood WideResNet-40-" + std::to_string(widen) + ": " + what;
  e.preprocessing = std::move(pre);
  e.origin = "built-in";
  return e;
}

// torchvision names its files <arch>-<first 8 hex digits of the sha256>.pth and checks
// that prefix; it is the only checksum it publishes.
WeightsEntry torchvision(const std::string& arch, const std::string& version, const std::string& file,
                         const std::string& params, std::int64_t resize) {
  WeightsEntry e;
  e.name = arch + "-imagenet1k-" + version;
  e.architecture = "resnet";
  e.model_params = params;
  e.url = "https://download.pytorch.org/models/" + file;
  e.sha256 = file.substr(file.rfind('-') + 1, 8);
  e.file_name = file;
  e.description = "torchvision " + arch + " IMAGENET1K_" + (version == "v1" ? "V1" : "V2") +
                  " (sha256 prefix published in the file name)";
  e.preprocessing = imagenet(resize);
  e.origin = "built-in";
  return e;
}

std::vector<WeightsEntry> built_in() {
  const std::string pood = "pytorch-ood 0.2 transform_for";
  const std::string upstream = "the upstream training script (pytorch-ood gives none)";
  std::vector<WeightsEntry> out = {
      wrn("imagenet32", "https://github.com/hendrycks/pre-training/raw/master/downsampled_train/snapshots/40_2/imagenet_wrn_baseline_epoch_99.pt",
          1000, 2, "pre-trained on 32x32 ImageNet", halves(upstream)),
      wrn("imagenet32-nocifar", "https://github.com/hendrycks/pre-training/raw/master/uncertainty/CIFAR/snapshots/imagenet/cifar10_excluded/imagenet_wrn_baseline_epoch_99.pt",
          0, 2, "32x32 ImageNet without CIFAR-10 classes (class count: see fc.weight)", halves(pood)),
      wrn("oe-cifar100-tune", "https://github.com/hendrycks/outlier-exposure/raw/master/CIFAR/snapshots/oe_tune/cifar100_wrn_oe_tune_epoch_9.pt",
          100, 2, "Outlier Exposure fine-tuned on CIFAR-100", cifar(upstream)),
      wrn("oe-cifar10-tune", "https://github.com/hendrycks/outlier-exposure/raw/master/CIFAR/snapshots/oe_tune/cifar10_wrn_oe_tune_epoch_9.pt",
          10, 2, "Outlier Exposure fine-tuned on CIFAR-10", cifar(upstream)),
      wrn("er-cifar10-tune", "https://github.com/wetliu/energy_ood/raw/master/CIFAR/snapshots/energy_ft/cifar10_wrn_s1_energy_ft_epoch_9.pt",
          10, 2, "energy regularisation fine-tuned on CIFAR-10", cifar(upstream)),
      wrn("er-cifar100-tune", "https://github.com/wetliu/energy_ood/raw/master/CIFAR/snapshots/energy_ft/cifar100_wrn_s1_energy_ft_epoch_9.pt",
          100, 2, "energy regularisation fine-tuned on CIFAR-100", cifar(upstream)),
      wrn("cifar100-pt", "https://github.com/wetliu/energy_ood/raw/master/CIFAR/snapshots/pretrained/cifar100_wrn_pretrained_epoch_99.pt",
          100, 2, "trained on CIFAR-100", cifar(pood)),
      wrn("cifar10-pt", "https://github.com/wetliu/energy_ood/raw/master/CIFAR/snapshots/pretrained/cifar10_wrn_pretrained_epoch_99.pt",
          10, 2, "trained on CIFAR-10", cifar(pood)),
      wrn("cifar10-pixmix", "https://cse.ovgu.de/files/cifar10-pixmix.pt", 10, 4, "trained with PixMix on CIFAR-10",
          halves(upstream)),
      wrn("cifar100-pixmix", "https://cse.ovgu.de/files/cifar100-pixmix.pt", 100, 4,
          "trained with PixMix on CIFAR-100", halves(upstream)),
      torchvision("resnet18", "v1", "resnet18-f37072fd.pth", R"({"depth": 18, "num_classes": 1000})", 256),
      torchvision("resnet34", "v1", "resnet34-b627a593.pth", R"({"depth": 34, "num_classes": 1000})", 256),
      torchvision("resnet50", "v1", "resnet50-0676ba61.pth", R"({"depth": 50, "num_classes": 1000})", 256),
      torchvision("resnet50", "v2", "resnet50-11ad3fa6.pth", R"({"depth": 50, "num_classes": 1000})", 232),
      torchvision("resnet101", "v1", "resnet101-63fe2227.pth", R"({"depth": 101, "num_classes": 1000})", 256),
      torchvision("resnet101", "v2", "resnet101-cd907fc2.pth", R"({"depth": 101, "num_classes": 1000})", 232),
      torchvision("resnet152", "v1", "resnet152-394f9c45.pth", R"({"depth": 152, "num_classes": 1000})", 256),
      torchvision("resnet152", "v2", "resnet152-f82ba261.pth", R"({"depth": 152, "num_classes": 1000})", 232),
      torchvision("resnext50-32x4d", "v1", "resnext50_32x4d-7cdf4587.pth",
                  R"({"depth": 50, "groups": 32, "width_per_group": 4, "num_classes": 1000})", 256),
      torchvision("resnext50-32x4d", "v2", "resnext50_32x4d-1a0047aa.pth",
                  R"({"depth": 50, "groups": 32, "width_per_group": 4, "num_classes": 1000})", 232),
      torchvision("wide-resnet50-2", "v1", "wide_resnet50_2-95faca4d.pth",
                  R"({"depth": 50, "width_per_group": 128, "num_classes": 1000})", 256),
      torchvision("wide-resnet50-2", "v2", "wide_resnet50_2-9ba9bcbe.pth",
                  R"({"depth": 50, "width_per_group": 128, "num_classes": 1000})", 232),
  };
  return out;
}

std::string string_field(const json& v, const std::string& where, const char* field) {
  if (!v.is_string() || v.get<std::string>().empty())
    throw FileError(where + "/" + field + ": expected a non-empty string, got " + v.dump());
  return v.get<std::string>();
}

void apply_user_registry(std::vector<WeightsEntry>& entries) {
  const char* env = std::getenv("OOD_WEIGHTS_REGISTRY");
  if (!env || !*env) return;
  const fs::path file = env;
  std::ifstream in(file);
  if (!in) throw FileError(file.string() + " ($OOD_WEIGHTS_REGISTRY): cannot be read");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    throw FileError(file.string() + " ($OOD_WEIGHTS_REGISTRY): not valid JSON: " + e.what());
  }
  if (!doc.is_object()) throw FileError(file.string() + " ($OOD_WEIGHTS_REGISTRY): expected an object of entries");
  for (const auto& [name, spec] : doc.items()) {
    const std::string where = file.string() + ": /" + name;
    if (!spec.is_object()) throw FileError(where + ": expected an object with at least \"url\"");
    // (a structured binding cannot be captured by clang 14, which builds the fuzzers)
    auto it = std::find_if(entries.begin(), entries.end(), [&key = name](const WeightsEntry& e) { return e.name == key; });
    WeightsEntry* e = nullptr;
    if (it == entries.end()) {
      if (!spec.contains("url")) throw FileError(where + ": a new entry needs \"url\"");
      entries.push_back(WeightsEntry{});
      e = &entries.back();
      e->name = name;
      e->model_params = "{}";
    } else {
      e = &*it;
    }
    e->origin = file.string();
    for (const auto& [field, value] : spec.items()) {
      if (field == "url") e->url = string_field(value, where, "url");
      else if (field == "sha256") {
        e->sha256 = value.is_string() ? value.get<std::string>() : "?";
        if (!e->sha256.empty() && (e->sha256.size() < 8 || e->sha256.size() > 64 ||
                                   e->sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
          throw FileError(where + "/sha256: expected 8 to 64 hex digits (or \"\" for none), got " + value.dump());
      } else if (field == "architecture") e->architecture = string_field(value, where, "architecture");
      else if (field == "file_name") {
        e->file_name = string_field(value, where, "file_name");
        if (e->file_name.find('/') != std::string::npos || e->file_name == "." || e->file_name == "..")
          throw FileError(where + "/file_name: a plain file name, without folders, got " + value.dump());
      } else if (field == "description") e->description = string_field(value, where, "description");
      else if (field == "model_params") {
        if (!value.is_object()) throw FileError(where + "/model_params: expected an object, got " + value.dump());
        // Written like the built-in entries: {"depth": 18, "num_classes": 5}.
        std::string text;
        for (const auto& [k, v] : value.items()) text += (text.empty() ? "" : ", ") + json(k).dump() + ": " + v.dump();
        e->model_params = "{" + text + "}";
      } else
        throw FileError(where + "/" + field +
                        ": unknown field (known: url, sha256, architecture, model_params, file_name, description)");
    }
    // A changed URL without a new checksum would be checked against the old file's sum.
    if (spec.contains("url") && !spec.contains("sha256") && it != entries.end()) e->sha256.clear();
    if (e->file_name.empty()) {
      const std::string tail = e->url.substr(e->url.find_last_of('/') + 1);
      e->file_name = name + "-" + (tail.empty() ? "weights.pt" : tail);
    }
  }
}

// Digests recorded at first download for entries without a published one.
fs::path recorded_file() { return weights_dir() / "recorded-sha256.json"; }

json read_recorded() {
  std::ifstream in(recorded_file());
  if (!in) return json::object();
  try {
    json j = json::parse(in);
    return j.is_object() ? j : json::object();
  } catch (const json::exception&) {
    ood::log::warn(recorded_file().string() + ": unreadable, ignored");
    return json::object();
  }
}

void write_recorded(const json& j) {
  const fs::path file = recorded_file();
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) throw FileError(tmp.string() + ": cannot be written");
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) throw FileError(file.string() + ": cannot be written: " + ec.message());
}

std::mutex recorded_mutex;

}  // namespace

std::vector<WeightsEntry> weights_registry() {
  std::vector<WeightsEntry> entries = built_in();
  apply_user_registry(entries);
  return entries;
}

std::optional<WeightsEntry> find_weights(const std::string& name) {
  for (auto& e : weights_registry())
    if (e.name == name) return e;
  return std::nullopt;
}

fs::path weights_dir() {
  if (const char* home = std::getenv("OOD_HOME"); home && *home) return fs::path(home) / "weights";
  const char* user_home = std::getenv("HOME");
  if (!user_home || !*user_home)
    throw FileError("neither $OOD_HOME nor $HOME is set: no folder for the weights cache (set OOD_HOME)");
  return fs::path(user_home) / ".cache" / "ood" / "weights";
}

fs::path cached_weights_path(const WeightsEntry& entry) { return weights_dir() / entry.file_name; }

fs::path fetch_weights(const WeightsEntry& entry, const DownloadOptions& given) {
  const fs::path file = cached_weights_path(entry);
  std::lock_guard<std::mutex> lock(recorded_mutex);
  json recorded = read_recorded();
  const std::string expected =
      !entry.sha256.empty() ? entry.sha256
                            : (recorded.contains(entry.file_name) ? recorded[entry.file_name].get<std::string>() : "");
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (expected.empty()) return file;  // placed by hand, nothing to compare with
    const std::string actual = sha256_of_file(file);
    if (sha256_matches(actual, expected)) return file;
    fs::remove(file, ec);
    throw FileError(file.string() + " (weights '" + entry.name + "'): sha256 is " + actual + ", expected " + expected +
                    (entry.sha256.empty() ? " (recorded at its first download)" : "") +
                    "; the file was removed. Fetch it again: ood weights fetch " + entry.name);
  }
  DownloadOptions options = given;
  options.sha256 = expected;
  if (options.label.empty()) options.label = entry.name;
  ood::log::info("downloading weights '" + entry.name + "' from " + entry.url + " to " + file.string());
  const DownloadResult result = download_file(entry.url, file, options);
  if (expected.empty()) {
    recorded[entry.file_name] = result.sha256;
    write_recorded(recorded);
    ood::log::warn("weights '" + entry.name + "': the publisher gives no checksum; recorded sha256 " + result.sha256 +
                   " of this first download in " + recorded_file().string() +
                   " and later uses are checked against it");
  }
  return file;
}

fs::path resolve_weights(const std::string& value, const std::string& architecture, const std::string& pointer,
                         WeightsEntry* entry) {
  std::error_code ec;
  if (fs::exists(value, ec)) return value;
  const auto found = find_weights(value);
  if (!found) return value;
  if (!found->architecture.empty() && found->architecture != architecture)
    throw InvalidArgument(pointer + ": weights '" + found->name + "' are for model '" + found->architecture +
                          "', not '" + architecture + "'" +
                          (found->model_params.size() > 2 ? " (with " + found->model_params + ")" : ""));
  if (entry) *entry = *found;
  return fetch_weights(*found);
}

}  // namespace ood::download
