// `ood weights list` and `ood weights fetch NAME...`: the weights store
// (sdk/include/ood/download/weights.hpp) from the command line.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "../cli.hpp"
#include "ood/core/suggest.hpp"
#include "ood/download/weights.hpp"

namespace ood::cli {

namespace {

std::string size_text(std::uintmax_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

std::string preprocessing_text(const download::Preprocessing& p) {
  std::ostringstream s;
  if (p.to_rgb) s << "to-rgb, ";
  if (p.resize.size() == 1) s << "resize shorter side " << p.resize[0] << ", ";
  if (p.resize.size() == 2) s << "resize " << p.resize[0] << "x" << p.resize[1] << ", ";
  if (p.center_crop > 0) s << "centre crop " << p.center_crop << ", ";
  s << std::setprecision(4) << "normalize mean [";
  for (std::size_t i = 0; i < p.mean.size(); ++i) s << (i ? ", " : "") << p.mean[i];
  s << "] std [";
  for (std::size_t i = 0; i < p.std.size(); ++i) s << (i ? ", " : "") << p.std[i];
  s << "] (" << p.source << ")";
  return s.str();
}

int list(bool verbose) {
  const auto entries = download::weights_registry();
  std::size_t width = 4;
  for (const auto& e : entries) width = std::max(width, e.name.size());
  std::cout << std::left << std::setw(static_cast<int>(width) + 2) << "NAME" << std::setw(13) << "MODEL"
            << std::setw(12) << "CACHED" << "PARAMETERS\n";
  for (const auto& e : entries) {
    std::error_code ec;
    const auto file = download::cached_weights_path(e);
    const bool cached = std::filesystem::exists(file, ec);
    std::cout << std::left << std::setw(static_cast<int>(width) + 2) << e.name << std::setw(13)
              << (e.architecture.empty() ? "-" : e.architecture) << std::setw(12)
              << (cached ? size_text(std::filesystem::file_size(file, ec)) : "no") << e.model_params << "\n";
    if (verbose) {
      std::cout << "    " << e.description << (e.description.empty() ? "" : "\n    ") << e.url << "\n    sha256: "
                << (e.sha256.empty() ? "none published (recorded at first download)" : e.sha256) << "\n";
      if (e.preprocessing) std::cout << "    preprocessing: " << preprocessing_text(*e.preprocessing) << "\n";
      if (e.origin != "built-in") std::cout << "    from " << e.origin << "\n";
    }
  }
  std::cout << "cache: " << download::weights_dir().string() << " (CACHED shows the file size)\n";
  return kExitOk;
}

int fetch(const std::vector<std::string>& names, bool quiet) {
  if (names.empty()) throw UsageError("ood weights fetch: give one or more names (see `ood weights list`)");
  for (const auto& name : names) {
    const auto entry = download::find_weights(name);
    if (!entry) {
      std::vector<std::string> known;
      for (const auto& e : download::weights_registry()) known.push_back(e.name);
      throw UsageError("ood weights fetch: unknown weights '" + name + "'" + core::did_you_mean(name, known) +
                       "; see `ood weights list`");
    }
    download::DownloadOptions options;
    if (quiet) options.progress = [](std::uint64_t, std::uint64_t) {};  // -q: no progress bar
    std::cout << download::fetch_weights(*entry, options).string() << "\n";
  }
  return kExitOk;
}

}  // namespace

int cmd_weights(const std::vector<std::string>& args, GlobalOptions& global) {
  po::options_description visible("ood weights list [--verbose] | ood weights fetch NAME...");
  std::vector<std::string> words;
  bool verbose = false, help = false;
  visible.add_options()("verbose,v", po::bool_switch(&verbose), "list: URLs, checksums and preprocessing too")
      ("help,h", po::bool_switch(&help), "this help");
  po::options_description own;  // the positional words are not listed in the help
  own.add(visible).add_options()("words", po::value<std::vector<std::string>>(&words), "list, or fetch and names");
  po::positional_options_description positional;
  positional.add("words", -1);
  parse_command("weights", args, own, global, &positional);
  if (help || words.empty()) {
    (help ? std::cout : std::cerr)
        << visible << "\nNamed pretrained weights for the model plugins' `weights` parameter, cached in "
        << "$OOD_HOME/weights (default ~/.cache/ood/weights); $OOD_WEIGHTS_REGISTRY adds entries.\n\n"
        << global_options_description(global) << "\n";
    return help ? kExitOk : kExitUsage;
  }
  Session session;
  open_session(global, session);  // logging (download progress and warnings)
  if (words[0] == "list") {
    if (words.size() > 1) throw UsageError("ood weights list takes no names");
    return list(verbose);
  }
  if (words[0] == "fetch") return fetch({words.begin() + 1, words.end()}, global.quiet);
  throw UsageError("ood weights: unknown action '" + words[0] + "' (list, fetch)");
}

}  // namespace ood::cli
