#include "ood/core/detector_setup.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "ood/error.hpp"

namespace ood::core {

using json = nlohmann::ordered_json;

void attach_detector(Detector& detector, const ComponentSpec& spec, const std::string& pointer,
                     Model& model, const std::string& model_plugin) {
  const DetectorNeeds needs = detector.needs();
  const std::string who = pointer + ": detector '" + spec.plugin + "' needs ";
  // The model says what it would need (a TorchScript module: the method to export).
  const auto whose = [&](Model::View view) {
    const std::string reason = model.missing_view(view);
    return " of the model, which model '" + model_plugin + "' does not provide" +
           (reason.empty() ? std::string() : ": " + reason);
  };
  if (needs.features && !model.has_features())
    throw InvalidArgument(who + "the penultimate features" + whose(Model::View::Features));
  if (needs.linear_head && !model.linear_head())
    throw InvalidArgument(who + "the linear last layer (weight and bias)" + whose(Model::View::LinearHead));
  if (needs.feature_map && !model.has_feature_map())
    throw InvalidArgument(who + "the feature map before global pooling (and the path from it to the logits)" +
                          whose(Model::View::FeatureMap));
  if (!needs.layers.empty()) {
    const std::vector<std::string> known = model.layer_names();
    for (const auto& layer : needs.layers) {
      if (std::find(known.begin(), known.end(), layer) != known.end()) continue;
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw InvalidArgument(pointer + "/params/layers: detector '" + spec.plugin + "' needs layer '" + layer +
                            "', which model '" + model_plugin + "' does not have" +
                            (known.empty() ? " (it exposes no intermediate layers)" : " (its layers: " + list + ")"));
    }
  }
  try {
    detector.attach(model);
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    throw InvalidArgument(what.rfind('/', 0) == 0 ? what : pointer + ": detector '" + spec.plugin + "' with model '" +
                                                               model_plugin + "': " + what);
  }
}

TensorDict detector_state_with_meta(const Detector& detector, const ComponentSpec& spec) {
  const TensorDict state = detector.state();
  if (state.contains(kDetectorStateMetaKey))
    throw StateError(std::string("the detector's state uses the reserved name ") + kDetectorStateMetaKey);
  const std::string text = json{{"format", kDetectorStateFormat},
                                {"detector", spec.plugin},
                                {"params", json::parse(spec.params.to_json_text())}}
                               .dump();
  at::Tensor meta = at::empty({static_cast<std::int64_t>(text.size())}, at::kByte);
  std::memcpy(meta.data_ptr<std::uint8_t>(), text.data(), text.size());
  TensorDict out;
  out.set(kDetectorStateMetaKey, meta);
  for (const auto& [name, tensor] : state) out.set(name, tensor);
  return out;
}

TensorDict detector_state_without_meta(const TensorDict& file_state, const ComponentSpec& spec,
                                       const std::filesystem::path& file) {
  const std::string where = file.string() + ": ";
  if (!file_state.contains(kDetectorStateMetaKey))
    throw StateError(where + "not a detector state written by ood (no '" + kDetectorStateMetaKey + "' entry)");
  const at::Tensor meta = file_state.at(kDetectorStateMetaKey).contiguous();
  json m;
  try {
    if (meta.scalar_type() != at::kByte || meta.dim() != 1) throw std::runtime_error("not a uint8 vector");
    m = json::parse(std::string(reinterpret_cast<const char*>(meta.data_ptr<std::uint8_t>()),
                                static_cast<std::size_t>(meta.numel())));
    if (!m.is_object() || !m.contains("format") || !m["format"].is_number_integer() || !m.contains("detector") ||
        !m["detector"].is_string())
      throw std::runtime_error("fields format and detector missing");
  } catch (const std::exception& e) {
    throw StateError(where + "corrupt detector state metadata: " + e.what());
  }
  const int format = m["format"].get<int>();
  if (format != kDetectorStateFormat)
    throw StateError(where + "detector state format " + std::to_string(format) + ", this ood reads format " +
                     std::to_string(kDetectorStateFormat));
  const std::string detector = m["detector"].get<std::string>();
  if (detector != spec.plugin)
    throw StateError(where + "holds the state of detector '" + detector + "', not of '" + spec.plugin + "'");
  const json params = json::parse(spec.params.to_json_text());
  if (m.contains("params") && m["params"] != params)
    spdlog::warn("{}: state fitted with parameters {}; the pipeline gives {}", spec.pointer, m["params"].dump(),
                 params.dump());
  TensorDict out;
  for (const auto& [name, tensor] : file_state)
    if (name != kDetectorStateMetaKey) out.set(name, tensor);
  return out;
}

}  // namespace ood::core
