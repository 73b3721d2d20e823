// `ood validate`, `ood run` and `ood demo`.
#include <iostream>

#include "../cli.hpp"
#include "ood/core/pipeline.hpp"
#include "ood/core/runner.hpp"

namespace ood::cli {

using json = nlohmann::ordered_json;

namespace {

struct PipelineArgs {
  std::string file;
  std::string out;
  std::vector<std::string> overrides;
  bool help = false;
};

po::options_description pipeline_options(const std::string& title, PipelineArgs& a, bool with_file,
                                          bool with_out) {
  po::options_description own(title);
  if (with_file) own.add_options()("file", po::value<std::string>(&a.file), "pipeline description (JSON)");
  if (with_out) own.add_options()("out,o", po::value<std::string>(&a.out), "output directory");
  own.add_options()("set", po::value<std::vector<std::string>>(&a.overrides)->composing(),
                    "override a value: PATH=VALUE, PATH a JSON pointer or dotted path (repeatable)")
      ("help,h", po::bool_switch(&a.help), "this help");
  return own;
}

json load_with_overrides(const json& document, const std::vector<std::string>& overrides) {
  json doc = document;
  for (const auto& o : overrides) core::apply_override(doc, o);
  return doc;
}

int run_document(const json& document, const std::string& source, const std::string& out_dir,
                 const GlobalOptions& global, Session& session) {
  core::Pipeline pipeline = core::parse_pipeline(document, session.registry, source);
  core::RunOptions options;
  options.out_dir = out_dir;
  options.threads = session.threads;
  core::RunSummary summary = core::run_pipeline(pipeline, session.registry, options);
  if (!summary.metrics_markdown.empty()) {
    std::cout << "\n" << summary.metrics_markdown << "\n";
    std::cout << "results: " << summary.metrics_json.string() << "\n";
  }
  if (!summary.checkpoint.empty()) std::cout << "checkpoint: " << summary.checkpoint.string() << "\n";
  (void)global;
  // The healthy detectors' results are written; the failed ones make the run fail.
  for (const auto& f : summary.failures) std::cerr << "error: " << f << "\n";
  if (!summary.failures.empty()) {
    std::cerr << "error: " << summary.failures.size() << " detector(s) failed; the results of the others are in "
              << summary.metrics_json.string() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

std::string default_out_dir(const std::string& file) {
  return std::filesystem::path(file).stem().string() + "-results";
}

}  // namespace

int cmd_validate(const std::vector<std::string>& args, GlobalOptions& global) {
  PipelineArgs a;
  auto own = pipeline_options("ood validate FILE [--set PATH=VALUE ...]", a, true, false);
  po::positional_options_description pos;
  pos.add("file", 1);
  parse_command("validate", args, own, global, &pos);
  if (a.help) {
    std::cout << own << "\n" << global_options_description(global) << "\n";
    return kExitOk;
  }
  if (a.file.empty()) throw UsageError("ood validate: which pipeline file?");
  Session session;
  open_session(global, session);
  const json doc = load_with_overrides(core::read_pipeline_file(a.file), a.overrides);
  const core::Pipeline p = core::parse_pipeline(doc, session.registry, a.file);
  std::cout << a.file << ": valid pipeline (" << (p.train ? "training, " : "") << p.detectors.size()
            << " detectors, " << p.out_data.size() << " OOD sets)\n";
  return kExitOk;
}

int cmd_run(const std::vector<std::string>& args, GlobalOptions& global) {
  PipelineArgs a;
  auto own = pipeline_options("ood run FILE [--out DIR] [--set PATH=VALUE ...]", a, true, true);
  po::positional_options_description pos;
  pos.add("file", 1);
  const auto vm = parse_command("run", args, own, global, &pos);
  if (vm.count("out") && a.out.empty()) throw UsageError("ood run: --out \"\": the output folder name is empty");
  if (a.help) {
    std::cout << own << "\n" << global_options_description(global) << "\n";
    return kExitOk;
  }
  if (a.file.empty()) throw UsageError("ood run: which pipeline file?");
  Session session;
  open_session(global, session);
  const json doc = load_with_overrides(core::read_pipeline_file(a.file), a.overrides);
  return run_document(doc, a.file, a.out.empty() ? default_out_dir(a.file) : a.out, global, session);
}

int cmd_demo(const std::vector<std::string>& args, GlobalOptions& global) {
  PipelineArgs a;
  bool print = false;
  std::string example = "plain";
  auto own = pipeline_options(
      "ood demo [--example plain|outlier-exposure] [--out DIR] [--set PATH=VALUE ...] [--print-pipeline]", a, false,
      true);
  own.add_options()("print-pipeline", po::bool_switch(&print), "print the embedded pipeline and exit")(
      "example", po::value<std::string>(&example),
      "plain (cross-entropy) or outlier-exposure (the same model and budget, trained with outlier exposure on "
      "pixel-shuffled training images)");
  const auto vm = parse_command("demo", args, own, global);
  if (vm.count("out") && a.out.empty()) throw UsageError("ood demo: --out \"\": the output folder name is empty");
  if (a.help) {
    std::cout << own << "\n" << global_options_description(global) << "\n";
    return kExitOk;
  }
  if (example != "plain" && example != "outlier-exposure")
    throw UsageError("ood demo: unknown --example '" + example + "' (plain, outlier-exposure)");
  const bool oe = example == "outlier-exposure";
  const json doc = load_with_overrides(
      core::parse_pipeline_text(oe ? kDemoOutlierExposurePipeline : kDemoPipeline, oe ? "demo-outlier-exposure" : "demo"),
      a.overrides);
  if (print) {
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  Session session;
  open_session(global, session);
  return run_document(doc, oe ? "demo-outlier-exposure" : "demo",
                      a.out.empty() ? (oe ? "ood-demo-outlier-exposure" : "ood-demo") : a.out, global, session);
}

}  // namespace ood::cli
