#include <ATen/Parallel.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "cli.hpp"
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
       "extra plugin directory or file, searched first (repeatable)")
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
  for (const auto& p : options.plugin_paths) search.extra_paths.emplace_back(p);
  session.report = core::load_plugins(core::plugin_search_paths(search), session.registry);
}

}  // namespace ood::cli
