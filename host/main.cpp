// ood: run out-of-distribution detection pipelines built from plugins.
#include <iostream>

#include "cli.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/error.hpp"

namespace {

constexpr const char* kUsage = R"(usage: ood [global options] <command> [args]

Commands:
  demo                      train a small WideResNet on Fashion-MNIST classes 0-5 and
                            evaluate every detector against held-out classes and noise
  run FILE                  run a pipeline description (JSON)
  validate FILE             check a pipeline against every plugin's schema
  plugins                   list the available components
  describe NAME             show a component's summary, paper and parameters

Run `ood <command> --help` for a command's options.
)";

int dispatch(const std::string& command, const std::vector<std::string>& args,
             ood::cli::GlobalOptions& global) {
  using namespace ood::cli;
  if (command == "plugins") return cmd_plugins(args, global);
  if (command == "describe") return cmd_describe(args, global);
  if (command == "validate") return cmd_validate(args, global);
  if (command == "run") return cmd_run(args, global);
  if (command == "demo") return cmd_demo(args, global);
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
    std::cerr << "error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const ood::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    // LibTorch (c10::Error) and the standard library: still one message, no crash.
    std::string what = e.what();
    const auto trace = what.find("\nException raised from");
    if (trace != std::string::npos) what = what.substr(0, trace);
    std::cerr << "error: " << what << "\n";
    return kExitFailure;
  }
}
