#pragma once
// Where this build of ood looks for its plugins by default.
#include <filesystem>
#include <vector>

namespace ood::core {

/// The running executable's path (/proc/self/exe).
std::filesystem::path executable_path();

/// The install dir (<prefix>/<libdir>/ood/plugins, with <prefix> derived from the
/// executable's location so installs relocate) and, when the executable lives in the
/// build tree, the build tree's plugins directory.
std::vector<std::filesystem::path> default_plugin_dirs();

}  // namespace ood::core
