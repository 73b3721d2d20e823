#include "ood/core/build_paths.hpp"

#include <system_error>

namespace ood::core {

namespace fs = std::filesystem;

fs::path executable_path() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
}

namespace {
bool is_inside(const fs::path& file, const fs::path& dir) {
  auto f = file.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++f) {
    if (d->empty()) continue;  // trailing separator
    if (f == file.end() || *f != *d) return false;
  }
  return true;
}
}  // namespace

std::vector<fs::path> default_plugin_dirs() {
  std::vector<fs::path> dirs;
  const fs::path exe = executable_path();
  if (exe.empty()) return dirs;
  // <prefix>/<bindir>/ood -> <prefix>
  fs::path prefix = exe.parent_path();
  for (const auto& part : fs::path(OOD_INSTALL_BINDIR)) {
    (void)part;
    prefix = prefix.parent_path();
  }
  dirs.push_back(prefix / OOD_INSTALL_PLUGIN_SUBDIR);
  std::error_code ec;
  const fs::path build_root = fs::weakly_canonical(OOD_BUILD_ROOT, ec);
  if (!ec && is_inside(fs::weakly_canonical(exe, ec), build_root))
    dirs.push_back(build_root / "plugins");
  return dirs;
}

}  // namespace ood::core
