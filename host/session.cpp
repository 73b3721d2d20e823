#include <ATen/Parallel.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <thread>

#include "cli.hpp"
#include "ood/core/build_paths.hpp"
#include "ood/core/plugin_scan.hpp"
#include "ood/core/progress.hpp"

namespace ood::cli {

po::options_description global_options_description(GlobalOptions& options) {
  po::options_description desc("Global options");
  desc.add_options()
      ("threads", po::value<int>(&options.threads)->default_value(options.threads),
       "LibTorch threads (0 = all cores)")
      ("log-level", po::value<std::string>(&options.log_level)->default_value(options.log_level),
       "trace, debug, info, warn, error or off")
      ("plugin-path", po::value<std::vector<std::string>>(&options.plugin_paths)->composing(),
       "extra plugin directory or file, searched first (repeatable; must exist)")
      ("override", po::value<std::vector<std::string>>(&options.overrides)->composing(),
       "NAME=FILE: where several plugin files provide component NAME (or KIND/NAME), use the one in FILE "
       "(searched first; logged and recorded in metrics.json; repeatable)")
      ("quiet,q", po::bool_switch(&options.quiet), "no progress output");
  return desc;
}

po::variables_map parse_command(const std::string& command, const std::vector<std::string>& args,
                                po::options_description& own, GlobalOptions& global,
                                const po::positional_options_description* positional) {
  po::options_description all;
  all.add(own).add(global_options_description(global));
  po::variables_map vm;
  try {
    auto parser = po::command_line_parser(args).options(all);
    if (positional) parser.positional(*positional);
    else parser.positional(po::positional_options_description());
    po::store(parser.run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError("ood " + command + ": " + e.what() + " (see `ood " + command + " --help`)");
  }
  return vm;
}

void open_session(const GlobalOptions& options, Session& session) {
  auto level = spdlog::level::from_str(options.log_level);
  if (level == spdlog::level::off && options.log_level != "off")
    throw UsageError("--log-level: unknown level '" + options.log_level +
                     "' (trace, debug, info, warn, error, off)");
  auto logger = spdlog::stderr_color_mt("ood");
  logger->set_pattern("%^[%l]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  core::Progress::set_enabled(!options.quiet && level <= spdlog::level::info);

  if (options.threads < 0) throw UsageError("--threads must be >= 0");
  // LibTorch starts with a fraction of the cores on this kind of machine; ood uses all
  // of them unless told otherwise.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // More threads than cores only slow LibTorch down (1000 on 2 cores: 100x slower;
  // 100000 never finishes starting them).
  const int max_threads = std::min(kMaxThreads, kThreadsPerCore * cores);
  if (options.threads > max_threads)
    throw UsageError("--threads " + std::to_string(options.threads) + ": at most " + std::to_string(max_threads) +
                     " (" + std::to_string(kThreadsPerCore) + " per hardware thread, " + std::to_string(cores) +
                     " here, and never more than " + std::to_string(kMaxThreads) + ")");
  session.threads = options.threads > 0 ? options.threads : cores;
  at::set_num_threads(session.threads);

  core::PluginSearchOptions search;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& o : options.overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == o.size())
      throw UsageError("--override " + o + ": expected NAME=FILE (e.g. --override energy-based=./ood-energy-based.so)");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.substr(eq + 1), ec))
      throw UsageError("--override " + o + ": " + o.substr(eq + 1) + " is not a plugin file (no such file)");
    overrides.emplace_back(o.substr(0, eq), o.substr(eq + 1));
    search.extra_paths.emplace_back(o.substr(eq + 1));  // the chosen file is searched first
  }
  for (const auto& p : options.plugin_paths) search.extra_paths.emplace_back(p);
  // Plugins are scanned in a child process (cached), and a library is loaded only when
  // a command uses one of its components: a plugin that crashes or hangs while loading
  // is refused without taking the command with it.
  const auto files = core::find_plugin_files(core::plugin_search_paths(search));
  if (const char* mode = std::getenv("OOD_PLUGIN_SCAN"); mode && std::string(mode) == "off") {
    // Every plugin loaded in this process, no child, no cache (for debuggers, and to
    // measure what scanning saves): a plugin that crashes takes the command with it.
    for (const auto& f : files) core::load_plugin_file(f, session.registry, session.report);
  } else {
    core::PluginScanOptions scan;
    scan.scanner = core::executable_path();
    scan.cache_file = core::default_plugin_cache_file();
    scan.timeout = core::default_plugin_scan_timeout();
    session.report = core::scan_plugins(files, session.registry, scan);
  }
  for (const auto& [name, file] : overrides) {
    session.registry.prefer(name, file);
    spdlog::warn("--override {}={}: component '{}' comes from {} (recorded in the results)", name, file, name,
                 std::filesystem::weakly_canonical(file).string());
  }
  // A name two files provide is unusable until one is removed or chosen: say so now,
  // once, for every command (validation then refuses pipelines that use it).
  for (const auto& c : session.registry.conflicts())
    if (!c.chosen)
      spdlog::warn("{}; it cannot be used until one is removed from the plugin path or chosen with --override {}=FILE",
                   c.message(), c.name);
}

int cmd_scan_plugins(const std::vector<std::string>& args) {
  // Only ever started by scan_plugins(): `__scan-plugins --fd N FILE...`.
  if (args.size() < 2 || args[0] != "--fd") throw UsageError("__scan-plugins: internal command");
  const int fd = std::stoi(args[1]);
  return core::run_plugin_scanner(std::vector<std::string>(args.begin() + 2, args.end()), fd);
}

}  // namespace ood::cli
