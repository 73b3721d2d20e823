// ood: run out-of-distribution detection pipelines built from plugins.
#include <c10/util/Exception.h>

#include <iostream>
#include <string>

#include "cli.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/error.hpp"

namespace {

constexpr const char* kUsage = R"(usage: ood [global options] <command> [args]

Commands:
  demo                      train a small WideResNet on Fashion-MNIST classes 0-5 and
                            evaluate four detectors against held-out classes and noise
                            (--example outlier-exposure: trained with outlier exposure)
  run FILE                  run a pipeline description (JSON)
  validate FILE             check a pipeline against every plugin's schema
  plugins                   list the available components
  describe NAME             show a component's summary, paper and parameters
  weights list | fetch NAME named pretrained weights: list them, download one
  data fetch NAME --root D  download, verify and extract a dataset into D
  new-plugin NAME --kind K  write an out-of-tree plugin project (meson.build, source,
                            unit test, pipeline) that builds against the installed SDK

Run `ood <command> --help` for a command's options.
)";

// Messages that wrap a LibTorch error carry its backtrace ("Exception raised from ...
// (most recent call first): frame #0 ..."); users get the message only.
std::string without_backtrace(std::string what) {
  const auto trace = what.find("Exception raised from");
  if (trace != std::string::npos) {
    what.erase(trace);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  }
  return what;
}

int dispatch(const std::string& command, const std::vector<std::string>& args,
             ood::cli::GlobalOptions& global) {
  using namespace ood::cli;
  if (command == "plugins") return cmd_plugins(args, global);
  if (command == "describe") return cmd_describe(args, global);
  if (command == "validate") return cmd_validate(args, global);
  if (command == "run") return cmd_run(args, global);
  if (command == "demo") return cmd_demo(args, global);
  if (command == "weights") return cmd_weights(args, global);
  if (command == "data") return cmd_data(args, global);
  if (command == "new-plugin") return cmd_new_plugin(args, global);
  if (command == "__scan-plugins") return cmd_scan_plugins(args);  // internal, not listed
  throw UsageError("unknown command '" + command + "'\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ood::cli;
  GlobalOptions global;
  try {
    // Global options may come before the command; everything from the command on is
    // parsed again by the command itself (which also accepts the global options).
    std::vector<std::string> args(argv + 1, argv + argc);
    std::size_t i = 0;
    bool help = false, version = false;
    std::vector<std::string> leading;
    const po::options_description global_table = global_options_description(global);
    while (i < args.size() && !args[i].empty() && args[i][0] == '-') {
      const std::string& a = args[i];
      if (a == "--help" || a == "-h") help = true;
      else if (a == "--version") version = true;
      else {
        leading.push_back(a);
        // "--threads 4": the value is the next argument ("--threads=4" is one).
        const auto* option = a.rfind("--", 0) == 0 && a.find('=') == std::string::npos
                                 ? global_table.find_nothrow(a.substr(2), false)
                                 : nullptr;
        if (option && option->semantic()->max_tokens() > 0 && i + 1 < args.size()) leading.push_back(args[++i]);
      }
      ++i;
    }
    if (version) {
      std::cout << "ood " << OOD_VERSION << "\n";
      return kExitOk;
    }
    if (i >= args.size()) {
      (help ? std::cout : std::cerr) << kUsage;
      return help ? kExitOk : kExitUsage;
    }
    const std::string command = args[i];
    std::vector<std::string> rest(leading);
    rest.insert(rest.end(), args.begin() + static_cast<long>(i) + 1, args.end());
    if (help) rest.push_back("--help");
    return dispatch(command, rest, global);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const ood::InvalidArgument& e) {
    std::cerr << "error: " << without_backtrace(e.what()) << "\n";
    return kExitUsage;
  } catch (const ood::Error& e) {
    std::cerr << "error: " << without_backtrace(e.what()) << "\n";
    return kExitFailure;
  } catch (const c10::Error& e) {
    // LibTorch: its message without the C++ backtrace.
    std::cerr << "error: " << without_backtrace(e.what_without_backtrace()) << "\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    // The standard library: still one message, no crash.
    std::cerr << "error: " << without_backtrace(e.what()) << "\n";
    return kExitFailure;
  }
}
