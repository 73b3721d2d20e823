#pragma once
// Putting a detector to work in a pipeline: checking what it needs against the model
// when the pipeline is built, and its fitted state as a versioned file that names the
// detector and its parameters.
#include <filesystem>
#include <string>

#include "ood/detector.hpp"
#include "ood/model.hpp"
#include "ood/params.hpp"
#include "ood/tensor_dict.hpp"

namespace ood::core {

/// Version of the detector state file written by `save_detector_state`.
inline constexpr int kDetectorStateFormat = 1;
/// The entry of a state file that holds its metadata (JSON text as uint8).
inline constexpr const char* kDetectorStateMetaKey = "_ood_detector_state";

/// Checks the detector's needs against the model (linear head, feature map, layers)
/// and calls its `attach`. `pointer` is the detector's pointer ("/detectors/knn"),
/// `model_plugin` the model's plugin name; errors name both (ood::InvalidArgument).
void attach_detector(Detector& detector, const ComponentSpec& spec, const std::string& pointer,
                     Model& model, const std::string& model_plugin);

/// The detector's state plus the metadata entry (format, plugin name, parameters).
TensorDict detector_state_with_meta(const Detector& detector, const ComponentSpec& spec);
/// Checks a loaded state file's metadata against the detector (same plugin, a format
/// this build reads) and returns the state without it. Other parameters than those of
/// the pipeline are allowed but logged. Throws ood::StateError.
TensorDict detector_state_without_meta(const TensorDict& file_state, const ComponentSpec& spec,
                                       const std::filesystem::path& file);

}  // namespace ood::core
