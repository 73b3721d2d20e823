#include "ood/core/build_context.hpp"

#include <algorithm>
#include <cstdlib>

#include "ood/augmentation.hpp"
#include "ood/dataset.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"

namespace ood::core {

namespace {
// Keeps the error's category (and so the host's exit code) while adding where it
// happened.
[[noreturn]] void rethrow_as(const Error& e, const std::string& message) {
  if (dynamic_cast<const InvalidArgument*>(&e)) throw InvalidArgument(message);
  if (dynamic_cast<const FileError*>(&e)) throw FileError(message);
  if (dynamic_cast<const ShapeError*>(&e)) throw ShapeError(message);
  if (dynamic_cast<const StateError*>(&e)) throw StateError(message);
  if (dynamic_cast<const NotSupported*>(&e)) throw NotSupported(message);
  throw Error(message);
}
}  // namespace

BuildContext::BuildContext(const Registry& registry, std::uint64_t seed)
    : registry_(registry), seed_(seed) {}

template <typename T, typename Factory>
std::shared_ptr<T> BuildContext::make(Kind kind, const ComponentSpec& spec) {
  const std::string kind_name(to_string(kind));
  const RegisteredComponent* comp = registry_.use(kind, spec.plugin);
  if (!comp)
    throw InvalidArgument(spec.pointer + ": unknown " + kind_name + " '" + spec.plugin + "'");
  // Errors name where the component was written and which plugin file built it.
  const std::string who = spec.pointer + ": " + kind_name + " '" + spec.plugin + "'" +
                          (comp->plugin_file.empty() ? "" : " (" + comp->plugin_file.filename().string() + ")");
  const std::string plugin_file =
      comp->plugin_file.empty() ? std::string("built in") : comp->plugin_file.string();
  // A nested component's error already says where it happened: keep it as it is.
  auto located = [&](const char* what) {
    return what[0] == '/' ? std::string(what) : who + ": " + what;
  };
  const auto& factory = std::get<Factory>(comp->factory);
  if (!factory) throw Error(who + ": its plugin " + plugin_file + " was not loaded");
  // Validation guaranteed every declared value: a getter that still fails is the
  // plugin's bug, and the Params say so (with the file).
  const Params params = spec.params.with_schema(
      comp->info.params, kind_name + " '" + spec.plugin + "' of plugin " + plugin_file);
  std::shared_ptr<T> object;
  try {
    object = factory(params, *this);
  } catch (const Error& e) {
    rethrow_as(e, located(e.what()));
  } catch (const std::exception& e) {
    // Problems a user can fix arrive as ood::Error; anything else escaping a factory is
    // a defect of the plugin.
    throw Error(who + ": its factory failed: " + e.what() + " (a bug in plugin " + plugin_file +
                ", not in the pipeline: factories report problems as ood::Error)");
  } catch (...) {
    throw Error(who + ": its factory threw an unknown exception (a bug in plugin " + plugin_file + ")");
  }
  if (!object) throw Error(who + ": its factory returned nothing (a bug in plugin " + plugin_file + ")");
  if (std::find(used_.begin(), used_.end(), comp) == used_.end()) used_.push_back(comp);
  return object;
}

std::shared_ptr<Model> BuildContext::make_model(const ComponentSpec& spec) {
  return make<Model, ModelFactory>(Kind::Model, spec);
}
std::shared_ptr<Detector> BuildContext::make_detector(const ComponentSpec& spec) {
  return make<Detector, DetectorFactory>(Kind::Detector, spec);
}
std::shared_ptr<Loss> BuildContext::make_loss(const ComponentSpec& spec) {
  return make<Loss, LossFactory>(Kind::Loss, spec);
}
std::shared_ptr<Dataset> BuildContext::make_dataset(const ComponentSpec& spec) {
  return make<Dataset, DatasetFactory>(Kind::Dataset, spec);
}
std::shared_ptr<Augmentation> BuildContext::make_augmentation(const ComponentSpec& spec) {
  return make<Augmentation, AugmentationFactory>(Kind::Augmentation, spec);
}

std::filesystem::path BuildContext::data_root() const { return default_data_root(); }

std::filesystem::path default_data_root() {
  if (const char* dir = std::getenv("OOD_DATA_DIR"); dir && *dir) return dir;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
    return std::filesystem::path(cache) / "ood" / "data";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "ood" / "data";
  return std::filesystem::current_path() / ".ood-data";
}

}  // namespace ood::core
