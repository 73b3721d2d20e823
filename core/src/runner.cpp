#include "ood/core/runner.hpp"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <chrono>
#include <ctime>

#include "ood/core/build_context.hpp"
#include "ood/core/detector_setup.hpp"
#include "ood/core/evaluator.hpp"
#include "ood/core/results.hpp"
#include "ood/core/trainer.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/loss.hpp"

namespace ood::core {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

at::Device parse_device(const std::string& text) {
  if (text == "cpu") return at::kCPU;
  if (!at::hasCUDA())
    throw InvalidArgument("/device: \"" + text + "\" requested, but this LibTorch build has no CUDA support");
  try {
    return at::Device(text);
  } catch (const std::exception&) {
    throw InvalidArgument("/device: invalid device \"" + text + "\"");
  }
}

std::vector<std::shared_ptr<const Augmentation>> build_transforms(BuildContext& ctx,
                                                                   const std::vector<ComponentSpec>& specs) {
  std::vector<std::shared_ptr<const Augmentation>> out;
  for (const auto& s : specs) out.push_back(ctx.make_augmentation(s));
  return out;
}

// save_tensor_dict() writes into existing directories only.
void create_parent_directory(const fs::path& file, const std::string& pointer) {
  if (!file.has_parent_path()) return;
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) throw FileError(pointer + ": " + file.parent_path().string() + ": cannot create directory: " + ec.message());
}

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

json component_provenance(const std::vector<const RegisteredComponent*>& used) {
  json out = json::array();
  for (const RegisteredComponent* c : used) {
    json entry = {{"kind", std::string(to_string(c->info.kind))}, {"name", c->info.name}, {"plugin", c->plugin}};
    if (c->record) {
      std::string sha;
      try {
        sha = c->record->sha256();  // computed once per file
      } catch (const std::exception& e) {
        spdlog::warn("provenance of {}: {}", c->plugin_file.string(), e.what());
      }
      entry["file"] = c->plugin_file.string();
      entry["version"] = c->record->version;
      entry["license"] = c->record->license;
      entry["sha256"] = sha;
    } else {
      entry["file"] = "built in";
    }
    out.push_back(entry);
  }
  return out;
}

json override_record(const Registry& registry) {
  json out = json::array();
  for (const auto& o : registry.overrides()) {
    json shadowed = json::array();
    for (const auto& f : o.files)
      if (f != *o.chosen) shadowed.push_back(f.string());
    out.push_back({{"kind", std::string(to_string(o.kind))},
                   {"name", o.name},
                   {"file", o.chosen->string()},
                   {"instead_of", shadowed}});
  }
  return out;
}

RunSummary run_pipeline(const Pipeline& pipeline, const Registry& registry, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const at::Device device = parse_device(pipeline.device);
  RunSummary summary;
  // parse_pipeline guarantees these; a Pipeline built by other code may not.
  if ((pipeline.train || !pipeline.detectors.empty()) && !pipeline.model)
    throw InvalidArgument("/: the pipeline has no model: add \"model\"");
  if (!pipeline.detectors.empty() && (!pipeline.in_data || pipeline.out_data.empty()))
    throw InvalidArgument("/data: detectors need \"in\" and at least one \"out\" set");

  // 0. The output folder, before any work: checked (a writable folder, or a new one
  // under a writable parent), with a staging folder beside it that collects this
  // run's files until they are swapped in as one set.
  ResultStaging staging(options.out_dir);

  // 1. Build everything before doing any work.
  at::manual_seed(pipeline.seed);  // model initialisation draws from the global generator
  BuildContext ctx(registry, pipeline.seed);
  std::shared_ptr<Model> model = ctx.make_model(*pipeline.model);
  model->to(device);
  // NaN weights make every score NaN; say so here rather than blame a data set later.
  for (const auto& [key, tensor] : model->state_dict()) {
    if (tensor.defined() && at::isFloatingType(tensor.scalar_type()) && tensor.isnan().any().item<bool>())
      throw Error("/model: the weights contain NaN (tensor '" + key + "'): the model cannot produce scores");
  }

  std::shared_ptr<Loss> loss;
  std::shared_ptr<const Dataset> train_data;
  std::vector<std::shared_ptr<const Augmentation>> train_transforms;
  std::shared_ptr<const Dataset> outlier_data;
  std::vector<std::shared_ptr<const Augmentation>> outlier_transforms;
  if (pipeline.train) {
    train_data = ctx.make_dataset(pipeline.train->data);
    train_transforms = build_transforms(ctx, pipeline.train->transforms);
    if (pipeline.train->outliers) {
      outlier_data = ctx.make_dataset(*pipeline.train->outliers);
      outlier_transforms = build_transforms(ctx, pipeline.train->outlier_transforms);
    }
    loss = ctx.make_loss(pipeline.train->loss);
    try {
      loss->attach(*model);
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      throw InvalidArgument(what.rfind('/', 0) == 0 ? what
                                                    : pipeline.train->loss.pointer + ": loss '" +
                                                          pipeline.train->loss.plugin + "': " + what);
    }
  }

  std::vector<NamedDetector> detectors;
  for (const DetectorPlan& plan : pipeline.detectors) {
    NamedDetector nd{plan.name, ctx.make_detector(plan.spec), false, ""};
    if (const auto* comp = registry.find(Kind::Detector, plan.spec.plugin)) nd.plugin_file = comp->plugin_file.string();
    const DetectorNeeds needs = nd.detector->needs();
    const std::string ptr = "/detectors/" + plan.name;
    attach_detector(*nd.detector, plan.spec, ptr, *model, pipeline.model->plugin);
    if (!plan.load_state.empty()) {
      try {
        nd.detector->load_state(
            detector_state_without_meta(io::load_state_dict(plan.load_state), plan.spec, plan.load_state));
      } catch (const std::exception& e) {
        throw Error(ptr + "/load_state: " + e.what());
      }
      if (!plan.fit_set.empty())
        spdlog::warn("{}: state loaded from {}; \"fit\" is ignored", ptr, plan.load_state.string());
    } else if (!plan.fit_set.empty()) {
      if (!needs.fit)
        throw InvalidArgument(ptr + "/fit: detector '" + plan.spec.plugin + "' does not fit; remove \"fit\"");
      nd.fits = true;
    } else if (needs.fit) {
      throw InvalidArgument(ptr + ": detector '" + plan.spec.plugin +
                            "' must be fitted: add \"fit\": \"fit\" (and /data/fit) or \"load_state\"");
    }
    detectors.push_back(std::move(nd));
  }

  std::shared_ptr<const Dataset> fit_data, in_data;
  std::vector<EvalSet> out_sets;
  std::vector<std::shared_ptr<const Augmentation>> eval_transforms;
  if (!detectors.empty()) {
    if (pipeline.fit_data) fit_data = ctx.make_dataset(*pipeline.fit_data);
    in_data = ctx.make_dataset(*pipeline.in_data);
    for (const auto& [name, spec] : pipeline.out_data)
      out_sets.push_back(EvalSet{name, spec.pointer, ctx.make_dataset(spec)});
    eval_transforms = build_transforms(ctx, pipeline.transforms);
  }

  json meta = {{"ood_version", OOD_VERSION},
               {"libtorch_version", TORCH_VERSION},
               {"libtorch_build", OOD_TORCH_BUILD_STRING},
               {"pipeline", pipeline.source},  // may not be UTF-8: dumped with U+FFFD
               {"seed", pipeline.seed},
               {"device", pipeline.device},
               {"threads", options.threads},
               {"started", now_iso8601()}};
  // Which files produced these numbers: every component built, with its plugin file,
  // version, licence and SHA-256, and any conflict resolved with --override.
  meta["components"] = component_provenance(ctx.used());
  if (const json overrides = override_record(registry); !overrides.empty()) meta["plugin_overrides"] = overrides;

  // 2. Train.
  if (pipeline.train) {
    // The default checkpoint is part of the result set: staged, swapped in with it. The
    // training state and log are written while training runs, straight to their place
    // (atomically), so that a run stopped half-way can be resumed.
    const bool in_set = pipeline.train->checkpoint.empty();
    summary.checkpoint = in_set ? options.out_dir / "model.pt" : pipeline.train->checkpoint;
    TrainOutputs to;
    to.state_file = training_state_path(summary.checkpoint);
    to.log_csv = summary.checkpoint.parent_path() / "train_log.csv";
    create_parent_directory(to.state_file, "/train/checkpoint");
    const TrainInputs ti{train_data, train_transforms, outlier_data, outlier_transforms, pipeline.train->loss.plugin};
    TrainResult tr = train_model(*model, *loss, ti, *pipeline.train, pipeline.seed, device, to);
    const fs::path written = in_set ? staging.dir() / "model.pt" : summary.checkpoint;
    create_parent_directory(written, "/train/checkpoint");
    io::save_tensor_dict(written, model->state_dict());
    spdlog::info("checkpoint written to {}", summary.checkpoint.string());
    meta["train"] = {{"steps", tr.steps},
                     {"seconds", tr.seconds},
                     {"last_epoch_loss", tr.last_epoch_loss},
                     {"last_epoch_accuracy", tr.last_epoch_accuracy},
                     {"checkpoint", summary.checkpoint.string()},
                     {"training_state", to.state_file.string()},
                     {"log", to.log_csv.string()}};
  }

  // 3. Fit, save states, evaluate. If this fails after training, the trained model is
  // still delivered: the staged set then holds model.pt alone.
  if (!detectors.empty()) try {
    EvaluatorOptions eo;
    eo.batch_size = pipeline.evaluate.batch_size;
    eo.workers = pipeline.evaluate.workers;
    eo.max_samples = pipeline.evaluate.max_samples;
    eo.seed = pipeline.seed;
    eo.device = device;
    Evaluator evaluator(model, detectors, eval_transforms, eo);
    const auto fit_start = std::chrono::steady_clock::now();
    if (fit_data) evaluator.fit(EvalSet{"fit", "/data/fit", fit_data});
    const double fit_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();
    for (std::size_t i = 0; i < detectors.size(); ++i) {
      const DetectorPlan& plan = pipeline.detectors[i];
      if (plan.save_state.empty() || !evaluator.failures()[i].empty()) continue;
      create_parent_directory(plan.save_state, "/detectors/" + plan.name + "/save_state");
      io::save_tensor_dict(plan.save_state, detector_state_with_meta(*detectors[i].detector, plan.spec));
      spdlog::info("/detectors/{}: state written to {}", plan.name, plan.save_state.string());
    }
    EvaluationResult result = evaluator.evaluate(EvalSet{"in", "/data/in", in_data}, out_sets);
    result.seconds_fit = fit_seconds;

    json sizes = json::object();
    sizes["in"] = result.in.labels.size(0);
    for (const auto& o : result.out) sizes[o.name] = o.labels.size(0);
    meta["samples"] = sizes;
    meta["seconds_fit"] = result.seconds_fit;
    meta["seconds_score"] = result.seconds_score;
    meta["seconds_score_waiting_for_data"] = result.seconds_score_waiting_for_data;
    const double waiting_share =
        result.seconds_score > 0 ? result.seconds_score_waiting_for_data / result.seconds_score : 0.0;
    spdlog::info("scoring took {:.1f} s, {:.0f}% of it waiting for data{}", result.seconds_score,
                 100 * waiting_share,
                 waiting_share > 0.25 ? ": the data loader sets the pace (raise evaluate.workers if cores are idle)"
                                      : "");
    meta["pipeline_normalized"] = pipeline.normalized;
    if (result.any_failed()) {
      json failed = json::object();
      for (std::size_t i = 0; i < result.failures.size(); ++i)
        if (!result.failures[i].empty()) {
          failed[result.detectors[i]] = result.failures[i];
          summary.failures.push_back(result.failures[i]);
        }
      meta["failed_detectors"] = failed;
    }

    summary.metrics_markdown = metrics_markdown(result);
    summary.metrics_json = options.out_dir / "metrics.json";
    // Everything is formatted before anything is written; names that are not UTF-8
    // (a pipeline file name) are written with U+FFFD in metrics.json.
    const std::string csv = pipeline.evaluate.save_scores ? scores_csv(result) : std::string();
    const std::string metrics =
        metrics_json(result, meta).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    if (pipeline.evaluate.save_scores) write_file_atomically(staging.dir() / "scores.csv", csv);
    write_file_atomically(staging.dir() / "metrics.md", summary.metrics_markdown);
    write_file_atomically(staging.dir() / "metrics.json", metrics);
  } catch (...) {
    if (pipeline.train && pipeline.train->checkpoint.empty()) {
      try {
        staging.commit();
        spdlog::warn("the run failed after training; the trained model is in {}", summary.checkpoint.string());
      } catch (const std::exception& e) {
        spdlog::warn("the run failed after training, and the trained model could not be kept: {}", e.what());
      }
    }
    throw;
  }
  staging.commit();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace ood::core
