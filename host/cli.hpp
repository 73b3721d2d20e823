#pragma once
// The `ood` command line: global options and one function per subcommand.
#include <boost/program_options.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "ood/core/plugin_loader.hpp"
#include "ood/core/registry.hpp"

namespace ood::cli {

namespace po = boost::program_options;

// Exit codes, documented in the README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work itself failed (file, data, plugin error)
inline constexpr int kExitUsage = 2;    // bad command line or invalid pipeline

/// Upper bound of --threads: this many per hardware thread, and never more than kMaxThreads.
inline constexpr int kThreadsPerCore = 4;
inline constexpr int kMaxThreads = 1024;

/// Options every subcommand accepts, before or after its name.
struct GlobalOptions {
  int threads = 0;  // 0 = all cores
  std::string log_level = "info";
  std::vector<std::string> plugin_paths;
  /// NAME=FILE: use FILE's component NAME where several plugin files provide it.
  std::vector<std::string> overrides;
  bool quiet = false;
};

po::options_description global_options_description(GlobalOptions& options);

/// Plugins loaded for one invocation.
struct Session {
  core::Registry registry;
  core::PluginLoadReport report;
  int threads = 1;
};

/// Configures logging and threads, then loads the plugins.
void open_session(const GlobalOptions& options, Session& session);

/// Thrown for command-line mistakes (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int cmd_plugins(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_describe(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_validate(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_run(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_demo(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_data(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_weights(const std::vector<std::string>& args, GlobalOptions& global);
int cmd_new_plugin(const std::vector<std::string>& args, GlobalOptions& global);
/// Hidden: the plugin scanner child (`ood __scan-plugins --fd N FILE...`).
int cmd_scan_plugins(const std::vector<std::string>& args);

/// Parses a subcommand's arguments with its own options plus the global ones.
po::variables_map parse_command(const std::string& command, const std::vector<std::string>& args,
                                po::options_description& own, GlobalOptions& global,
                                const po::positional_options_description* positional = nullptr);

/// The demo pipeline shipped inside the binary.
extern const char* const kDemoPipeline;
/// The outlier-exposure example (`ood demo --example outlier-exposure`).
extern const char* const kDemoOutlierExposurePipeline;

}  // namespace ood::cli
