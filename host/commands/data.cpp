// `ood data fetch NAME... [--root DIR] [--set KEY=VALUE]...`: prepares datasets the way a
// pipeline would with "download": true (download, verify, extract; nothing when the data
// is there), then reports what is there.
#include <iostream>
#include <nlohmann/json.hpp>

#include "../cli.hpp"
#include "ood/core/build_context.hpp"
#include "ood/core/suggest.hpp"
#include "ood/core/validation.hpp"
#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/params.hpp"

namespace ood::cli {

namespace {

using json = nlohmann::ordered_json;

// "KEY=VALUE": VALUE as JSON when it parses (numbers, true, lists), else as a string.
std::pair<std::string, json> parse_setting(const std::string& setting) {
  const auto eq = setting.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--set " + setting + ": expected KEY=VALUE (e.g. --set split=test)");
  const std::string value = setting.substr(eq + 1);
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) parsed = value;
  return {setting.substr(0, eq), parsed};
}

int fetch(const std::vector<std::string>& names, const std::string& root, const std::vector<std::string>& settings,
          Session& session) {
  if (names.empty()) throw UsageError("ood data fetch: give one or more dataset names (see `ood plugins --kind dataset`)");
  json params = json::object();
  for (const auto& s : settings) {
    auto [key, value] = parse_setting(s);
    params[key] = value;
  }
  if (!root.empty()) params["root"] = root;
  core::BuildContext context(session.registry, 0);
  for (const auto& name : names) {
    const auto* component = session.registry.find(Kind::Dataset, name);
    if (!component) {
      std::vector<std::string> known;
      for (const auto* c : session.registry.list(Kind::Dataset)) known.push_back(c->info.name);
      throw UsageError("ood data fetch: unknown dataset '" + name + "'" + core::did_you_mean(name, known) +
                       "; `ood plugins --kind dataset` lists them");
    }
    bool downloads = false;
    for (const auto& p : component->info.params) downloads = downloads || p.name() == "download";
    if (!downloads)
      throw UsageError("ood data fetch: dataset '" + name + "' has no \"download\" parameter (nothing to fetch)");
    json own = params;
    own["download"] = true;
    const std::string pointer = "/data fetch " + name;
    std::vector<core::Diagnostic> diagnostics;
    const auto normalized =
        core::SchemaValidator(session.registry).component({{"plugin", name}, {"params", own}}, Kind::Dataset, "",
                                                          diagnostics);
    if (!normalized) {
      std::string message = "ood data fetch " + name + ":";
      for (const auto& d : diagnostics) message += "\n  " + (d.pointer.empty() ? std::string("/") : d.pointer) + ": " + d.message;
      throw UsageError(message);
    }
    const auto dataset = context.make_dataset(
        ComponentSpec{name, Params::from_json_text((*normalized)["params"].dump(), "/params"), ""});
    std::cout << name << ": " << dataset->size() << " samples"
              << " in " << (*normalized)["params"].value("root", context.data_root().string()) << "\n";
  }
  return kExitOk;
}

}  // namespace

int cmd_data(const std::vector<std::string>& args, GlobalOptions& global) {
  po::options_description visible("ood data fetch NAME... [--root DIR] [--set KEY=VALUE]...");
  std::vector<std::string> words, settings;
  std::string root;
  bool help = false;
  visible.add_options()("root", po::value<std::string>(&root),
                        "the datasets' root folder (default: each dataset's default, $OOD_DATA_DIR or "
                        "~/.cache/ood/data)")
      ("set", po::value<std::vector<std::string>>(&settings), "a dataset parameter, e.g. --set split=extra")
      ("help,h", po::bool_switch(&help), "this help");
  po::options_description own;
  own.add(visible).add_options()("words", po::value<std::vector<std::string>>(&words), "fetch and names");
  po::positional_options_description positional;
  positional.add("words", -1);
  parse_command("data", args, own, global, &positional);
  if (help || words.empty()) {
    (help ? std::cout : std::cerr)
        << visible
        << "\nDownloads, verifies and extracts datasets as a pipeline with \"download\": true would, so that "
           "later runs\nfind them (nothing is downloaded when the data is already there). $OOD_RESOURCES "
           "overrides URLs and\nchecksums (mirrors, air-gapped sites).\n\n"
        << global_options_description(global) << "\n";
    return help ? kExitOk : kExitUsage;
  }
  Session session;
  open_session(global, session);
  if (words[0] == "fetch") return fetch({words.begin() + 1, words.end()}, root, settings, session);
  throw UsageError("ood data: unknown action '" + words[0] + "' (fetch)");
}

}  // namespace ood::cli
