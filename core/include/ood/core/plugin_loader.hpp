#pragma once
// Finding and loading plugin libraries.
//
// Search order: --plugin-path (directories or files), $OOD_PLUGIN_PATH
// (colon-separated), the install dir (<prefix>/<libdir>/ood/plugins, found relative
// to the executable so installs relocate), then the build tree's plugins when the
// executable runs from the build tree. Directories are searched recursively for files
// named `ood-<name>.so`. A library that fails a check is refused with a message naming
// the file; the others stay usable. Loaded libraries are never unloaded: objects,
// vtables and exception types from a plugin must outlive everything.
#include <filesystem>
#include <string>
#include <vector>

#include "ood/core/registry.hpp"

namespace ood::core {

struct PluginSearchOptions {
  /// From --plugin-path; searched first.
  std::vector<std::filesystem::path> extra_paths;
  /// Read $OOD_PLUGIN_PATH.
  bool use_environment = true;
  /// Search the install dir and the build tree.
  bool use_default_dirs = true;
};

struct PluginLoadReport {
  struct Loaded {
    std::filesystem::path file;
    std::string name;
    std::string version;
    std::string summary;
    std::size_t components = 0;
    std::string license;
  };
  struct Refused {
    std::filesystem::path file;
    std::string reason;  // one line, names the file
  };
  std::vector<Loaded> loaded;
  std::vector<Refused> refused;
};

/// The directories (or files) to search, in order, without duplicates. Throws
/// ood::InvalidArgument naming an `extra_paths` entry that does not exist; a missing
/// $OOD_PLUGIN_PATH entry is only a warning.
std::vector<std::filesystem::path> plugin_search_paths(const PluginSearchOptions& options);

/// Plugin files found under `paths`, in search order (sorted within a directory),
/// each file once.
std::vector<std::filesystem::path> find_plugin_files(
    const std::vector<std::filesystem::path>& paths);

/// Loads every plugin file found under `paths` into `registry`. Never throws for a
/// bad plugin: refusals are reported (and logged as warnings).
PluginLoadReport load_plugins(const std::vector<std::filesystem::path>& paths,
                              Registry& registry);

/// Loads one file; appends to `report`.
void load_plugin_file(const std::filesystem::path& file, Registry& registry,
                      PluginLoadReport& report);

}  // namespace ood::core
