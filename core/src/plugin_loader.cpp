// The only file that talks to Boost.DLL (its API differs between Boost versions:
// 1.74 has boost::dll::import, later ones import_symbol; shared_library::get_alias
// exists in both).
#include "ood/core/plugin_loader.hpp"

// library_info.hpp uses std::vector without including it in Boost 1.74.
#include <vector>
#include <boost/dll/library_info.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fstream>
#include <optional>
#include <system_error>
#include <cstdlib>
#include <mutex>
#include <set>

#include "ood/core/build_paths.hpp"
#include "ood/error.hpp"

namespace ood::core {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFilePrefix = "ood-";
constexpr const char* kFileSuffix = ".so";
constexpr const char* kEntryAlias = "ood_plugin";
constexpr const char* kEntrySection = "boostdll";

bool looks_like_plugin_file(const fs::path& file) {
  const std::string name = file.filename().string();
  return name.size() > 7 && name.rfind(kFilePrefix, 0) == 0 &&
         name.compare(name.size() - 3, 3, kFileSuffix) == 0;
}

// Libraries stay loaded for the life of the process (see the header).
std::vector<boost::dll::shared_library>& loaded_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}
std::mutex& loader_mutex() {
  static std::mutex m;
  return m;
}

std::string expected_name(const fs::path& file) {
  std::string stem = file.filename().string();
  stem = stem.substr(std::string(kFilePrefix).size());
  return stem.substr(0, stem.size() - std::string(kFileSuffix).size());
}

void append_split(std::vector<fs::path>& out, const char* text) {
  if (!text) return;
  std::string s(text);
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace

std::vector<fs::path> plugin_search_paths(const PluginSearchOptions& options) {
  std::vector<fs::path> candidates = options.extra_paths;
  // A path the user typed must exist: a typo would otherwise run without the plugin
  // (or with a built-in of the same name) and say nothing.
  for (const fs::path& p : options.extra_paths) {
    std::error_code ec;
    if (!fs::exists(p, ec))
      throw InvalidArgument("--plugin-path " + p.string() + ": no such file or directory");
  }
  if (options.use_environment) {
    // $OOD_PLUGIN_PATH is often set once for many commands and machines: a missing
    // entry is a warning, not an error.
    std::vector<fs::path> from_env;
    append_split(from_env, std::getenv("OOD_PLUGIN_PATH"));
    for (const fs::path& p : from_env) {
      std::error_code ec;
      if (!fs::exists(p, ec)) spdlog::warn("OOD_PLUGIN_PATH: '{}' does not exist, skipped", p.string());
      candidates.push_back(p);
    }
  }
  if (options.use_default_dirs) {
    for (const fs::path& dir : default_plugin_dirs()) candidates.push_back(dir);
  }
  std::vector<fs::path> out;
  std::set<fs::path> seen;
  for (const fs::path& p : candidates) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(p, ec);
    if (ec) canonical = p;
    // "/a/b/" and "/a/b" are the same directory.
    if (!canonical.has_filename() && canonical.has_parent_path()) canonical = canonical.parent_path();
    if (seen.insert(canonical).second) out.push_back(canonical);
  }
  return out;
}

std::vector<fs::path> find_plugin_files(const std::vector<fs::path>& paths) {
  std::vector<fs::path> out;
  std::set<fs::path> seen;
  auto add = [&](const fs::path& file) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(file, ec);
    if (ec) canonical = file;
    if (seen.insert(canonical).second) out.push_back(canonical);
  };
  for (const fs::path& path : paths) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      add(path);  // named explicitly: checked like any other (a wrong name is refused)
      continue;
    }
    if (!fs::is_directory(path, ec)) {
      spdlog::debug("plugin path '{}' does not exist, skipped", path.string());
      continue;
    }
    std::vector<fs::path> found;
    for (fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && looks_like_plugin_file(it->path())) found.push_back(it->path());
    }
    std::sort(found.begin(), found.end());
    for (const fs::path& f : found) add(f);
  }
  return out;
}

namespace {

// Why `file` cannot be a shared library for this host, judging by its ELF header;
// nothing when it may be one.
std::optional<std::string> elf_problem(const fs::path& file) {
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) return "cannot open: " + std::error_code(errno ? errno : EIO, std::generic_category()).message();
  unsigned char head[20] = {0};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = in.gcount();
  if (got < 4 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F')
    return std::string("no ELF header: a text file or another format?");
  if (got < static_cast<std::streamsize>(sizeof head)) return std::string("truncated ELF header");
  if (head[4] != 2) return std::string("a 32-bit ELF file");
  if (head[16] != 3 /* ET_DYN */) return std::string("an ELF file, but not a shared library");
  return std::nullopt;
}

}  // namespace

void load_plugin_file(const fs::path& file, Registry& registry, PluginLoadReport& report) {
  std::lock_guard<std::mutex> lock(loader_mutex());
  auto refuse = [&](const std::string& reason) {
    report.refused.push_back({file, reason});
    spdlog::warn("{}", reason);
  };
  const std::string where = "plugin '" + file.string() + "'";
  if (!looks_like_plugin_file(file)) {
    refuse(where + ": refused: plugin files are named 'ood-<name>.so'");
    return;
  }

  // 1. Recognise the entry point without running any of the library's code. Boost's
  // ELF reader reports a file that is not ELF, or is cut short, as "basic_ios::clear":
  // look at the header first, so the message says what is wrong.
  if (auto problem = elf_problem(file)) {
    refuse(where + ": refused: not a readable shared library (" + *problem + ")");
    return;
  }
  try {
    boost::dll::library_info info(file, /*throw_if_not_native=*/true);
    std::vector<std::string> symbols = info.symbols(kEntrySection);
    if (std::find(symbols.begin(), symbols.end(), kEntryAlias) == symbols.end()) {
      refuse(where + ": refused: missing entry point '" + kEntryAlias +
             "' (was it built with OOD_PLUGIN(...)?)");
      return;
    }
  } catch (const std::ios_base::failure&) {
    refuse(where + ": refused: not a readable shared library (truncated or malformed ELF file)");
    return;
  } catch (const std::exception& e) {
    refuse(where + ": refused: not a readable shared library (" + e.what() + ")");
    return;
  }

  // 2. Load it privately (RTLD_LOCAL: plugins cannot interpose each other's symbols).
  boost::dll::shared_library lib;
  try {
    lib.load(file, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    refuse(where + ": refused: cannot be loaded: " + e.what());
    return;
  }

  // 3. Check the info struct, ABI first.
  const PluginInfo* info = nullptr;
  try {
    auto entry = lib.get_alias<const PluginInfo*()>(kEntryAlias);
    info = entry();
  } catch (const std::exception& e) {
    refuse(where + ": refused: its entry point failed: " + e.what());
    return;
  }
  if (info == nullptr) {
    refuse(where + ": refused: its entry point returned no plugin info");
    return;
  }
  if (info->abi_version != OOD_PLUGIN_ABI_VERSION) {
    refuse("Wrong ABI version in " + where + ": got " + std::to_string(info->abi_version) +
           ", this host is " + std::to_string(OOD_PLUGIN_ABI_VERSION));
    return;
  }
  constexpr std::size_t kRequiredSize = offsetof(PluginInfo, torch_build) + sizeof(const char*);
  if (info->struct_size < kRequiredSize) {
    refuse(where + ": refused: plugin info has " + std::to_string(info->struct_size) +
           " bytes, this host reads " + std::to_string(kRequiredSize));
    return;
  }
  auto text = [](const char* s) { return s ? std::string(s) : std::string("(none)"); };
  if (text(info->torch_version) != TORCH_VERSION) {
    refuse("Wrong LibTorch version in " + where + ": built with " + text(info->torch_version) +
           ", this host uses " + TORCH_VERSION);
    return;
  }
  // Same version string, yet another build (CUDA vs CPU): different libraries.
  if (text(info->torch_build) != OOD_TORCH_BUILD_STRING) {
    refuse("Wrong LibTorch build in " + where + ": built with '" + text(info->torch_build) +
           "', this host uses '" + OOD_TORCH_BUILD_STRING + "'");
    return;
  }
  if (text(info->cxx_abi) != OOD_CXX_ABI_STRING) {
    refuse("Wrong C++ ABI in " + where + ": built with '" + text(info->cxx_abi) +
           "', this host uses '" + OOD_CXX_ABI_STRING + "'");
    return;
  }
  const std::string name = text(info->name);
  if (name != expected_name(file)) {
    refuse(where + ": refused: it calls itself '" + name + "' but the file name says '" +
           expected_name(file) + "'");
    return;
  }
  if (!info->register_components) {
    refuse(where + ": refused: no register_components function");
    return;
  }

  // 4. Only now run its code: the registration, all or nothing.
  auto record = std::make_shared<PluginRecord>();
  record->name = name;
  record->version = text(info->version);
  record->summary = text(info->summary);
  record->license = text(info->license);
  record->torch_build = text(info->torch_build);
  record->file = file;
  registry.begin_plugin(record);
  const std::size_t before = registry.list().size();
  try {
    info->register_components(registry);
  } catch (const std::exception& e) {
    registry.rollback_plugin();
    refuse(where + ": refused: registration failed: " + e.what());
    return;
  } catch (...) {
    registry.rollback_plugin();
    refuse(where + ": refused: registration failed with an unknown exception");
    return;
  }
  registry.commit_plugin();
  const std::size_t added = registry.list().size() - before;
  report.loaded.push_back({file, name, text(info->version), text(info->summary), added, record->license});
  spdlog::debug("loaded plugin '{}' ({} components) from {}", name, added, file.string());
  loaded_libraries().push_back(std::move(lib));
}

PluginLoadReport load_plugins(const std::vector<fs::path>& paths, Registry& registry) {
  PluginLoadReport report;
  for (const fs::path& file : find_plugin_files(paths)) load_plugin_file(file, registry, report);
  return report;
}

}  // namespace ood::core
