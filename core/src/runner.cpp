#include "ood/core/runner.hpp"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <chrono>
#include <ctime>

#include "ood/core/build_context.hpp"
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

RunSummary run_pipeline(const Pipeline& pipeline, const Registry& registry, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const at::Device device = parse_device(pipeline.device);
  RunSummary summary;

  // 1. Build everything before doing any work.
  at::manual_seed(pipeline.seed);  // model initialisation draws from the global generator
  BuildContext ctx(registry, pipeline.seed);
  std::shared_ptr<Model> model = ctx.make_model(*pipeline.model);
  model->to(device);

  std::shared_ptr<Loss> loss;
  std::shared_ptr<const Dataset> train_data;
  std::vector<std::shared_ptr<const Augmentation>> train_transforms;
  if (pipeline.train) {
    train_data = ctx.make_dataset(pipeline.train->data);
    train_transforms = build_transforms(ctx, pipeline.train->transforms);
    loss = ctx.make_loss(pipeline.train->loss);
  }

  std::vector<NamedDetector> detectors;
  for (const DetectorPlan& plan : pipeline.detectors) {
    NamedDetector nd{plan.name, ctx.make_detector(plan.spec), false};
    const DetectorNeeds needs = nd.detector->needs();
    const std::string ptr = "/detectors/" + plan.name;
    if (!plan.load_state.empty()) {
      try {
        nd.detector->load_state(io::load_state_dict(plan.load_state));
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
               {"pipeline", pipeline.source},
               {"seed", pipeline.seed},
               {"device", pipeline.device},
               {"threads", options.threads},
               {"started", now_iso8601()}};

  // 2. Train.
  if (pipeline.train) {
    TrainResult tr = train_model(*model, *loss, train_data, train_transforms, *pipeline.train,
                                 pipeline.seed, device);
    summary.checkpoint = pipeline.train->checkpoint.empty() ? options.out_dir / "model.pt"
                                                            : pipeline.train->checkpoint;
    create_parent_directory(summary.checkpoint, "/train/checkpoint");
    io::save_tensor_dict(summary.checkpoint, model->state_dict());
    spdlog::info("checkpoint written to {}", summary.checkpoint.string());
    meta["train"] = {{"steps", tr.steps},
                     {"seconds", tr.seconds},
                     {"last_epoch_loss", tr.last_epoch_loss},
                     {"last_epoch_accuracy", tr.last_epoch_accuracy},
                     {"checkpoint", summary.checkpoint.string()}};
  }

  // 3. Fit, save states, evaluate.
  if (!detectors.empty()) {
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
      if (plan.save_state.empty()) continue;
      create_parent_directory(plan.save_state, "/detectors/" + plan.name + "/save_state");
      io::save_tensor_dict(plan.save_state, detectors[i].detector->state());
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
    meta["pipeline_normalized"] = pipeline.normalized;

    summary.metrics_markdown = metrics_markdown(result);
    summary.metrics_json = options.out_dir / "metrics.json";
    if (pipeline.evaluate.save_scores)
      write_file_atomically(options.out_dir / "scores.csv", scores_csv(result));
    write_file_atomically(options.out_dir / "metrics.md", summary.metrics_markdown);
    write_file_atomically(summary.metrics_json, metrics_json(result, meta).dump(2) + "\n");
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace ood::core
