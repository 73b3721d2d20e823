// Evaluation overhead: the evaluator (loader threads, shared Views, detectors, score
// collection) over the same data as a bare model forward loop, in the same run.
//   ratio_1 = evaluate with 1 detector  / bare forward    (goal: < 1.1)
//   ratio_4 = evaluate with 4 detectors / bare forward    (goal: < 1.1)
// Model: WideResNet-16-2 (the reference architecture), 2048 CIFAR-sized inputs held in
// memory, batch 128, best of 3. Threads: LibTorch's count is printed; set it with
// OOD_BENCH_THREADS (default: all cores).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "ood/core/build_context.hpp"
#include "ood/core/evaluator.hpp"
#include "ood/core/plugin_loader.hpp"
#include "ood/core/progress.hpp"
#include "ood/core/validation.hpp"

namespace {

using namespace ood;

class InMemory final : public Dataset {
 public:
  explicit InMemory(at::Tensor x) : x_(std::move(x)) {}
  std::int64_t size() const override { return x_.size(0); }
  Sample get(std::int64_t i) const override { return {x_[i], at::scalar_tensor(0, at::kLong)}; }
  DatasetInfo info() const override { return {}; }

 private:
  at::Tensor x_;
};

template <class Work>
double best_of_3(Work&& work) {
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    work();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

ComponentSpec spec(const core::Registry& registry, Kind kind, const std::string& plugin, const std::string& params) {
  core::SchemaValidator validator(registry);
  std::vector<core::Diagnostic> diags;
  auto c = validator.component(nlohmann::ordered_json{{"plugin", plugin}, {"params", nlohmann::ordered_json::parse(params)}},
                               kind, "/bench", diags);
  if (!c) throw std::runtime_error("bench: invalid component " + plugin);
  return {plugin, Params::from_json_text((*c)["params"].dump(), "/bench/params"), "/bench"};
}

}  // namespace

int main() {
  const char* env = std::getenv("OOD_BENCH_THREADS");
  const int threads = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  core::Progress::set_enabled(false);

  core::Registry registry;
  core::PluginSearchOptions search;
  core::load_plugins(core::plugin_search_paths(search), registry);
  core::BuildContext ctx(registry, 0);
  at::manual_seed(0);
  std::shared_ptr<Model> model =
      ctx.make_model(spec(registry, Kind::Model, "wide-resnet", R"({"num_classes": 10, "depth": 16, "widen_factor": 2})"));
  model->set_mode(ModelMode::Eval);

  constexpr std::int64_t n = 2048, batch = 128;
  const at::Tensor x = at::randn({n, 3, 32, 32});
  auto data = std::make_shared<InMemory>(x);

  const double bare = best_of_3([&] {
    at::NoGradGuard no_grad;
    for (std::int64_t b = 0; b < n; b += batch) model->logits(x.slice(0, b, b + batch));
  });

  auto run = [&](const std::vector<std::string>& names) {
    std::vector<core::NamedDetector> dets;
    for (const auto& name : names) dets.push_back({name, ctx.make_detector(spec(registry, Kind::Detector, name, "{}")), false});
    core::EvaluatorOptions o;
    o.batch_size = batch;
    o.workers = 2;
    core::Evaluator ev(model, dets, {}, o);
    return best_of_3([&] { ev.score({"in", "/bench", data}, false); });
  };
  const double one = run({"energy-based"});
  const double four = run({"max-softmax", "energy-based", "max-logit", "entropy"});

  std::printf("threads=%d samples=%lld batch=%lld\n", threads, static_cast<long long>(n), static_cast<long long>(batch));
  std::printf("bare_forward_s=%.3f eval_1_detector_s=%.3f eval_4_detectors_s=%.3f\n", bare, one, four);
  std::printf("ratio_1=%.3f ratio_4=%.3f (goal < 1.1)\n", one / bare, four / bare);
  return 0;
}
