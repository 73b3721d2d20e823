// Cost of the heavier detectors against baselines measured in the same process and run:
//   1. fit of `mahalanobis` and `vim` on 50,000 x 640 float32 features (batches of 500,
//      labels 0..9) / one Gram product at::mm(F.t(), F) over the same matrix
//      (the BLAS bound; goal < 2);
//   2. `knn` (k 50, normalize true) fitted on 50,000 x 640 features: 10,000 queries
//      scored in batches of 1,000, queries/s and resident memory, against a plain
//      exact search (one at::addmm of the batch against all stored features +
//      at::topk); faiss is not used;
//   3. `odin` (eps 0.002, temperature 1000) and `mcd` (samples 10) per batch of 128 /
//      one forward of the same batch through the same model (WideResNet-16-2, 10
//      classes, drop_rate 0.3, random weights, eval mode), under at::NoGradGuard as
//      the evaluator runs them; each time is the mean over 2 batches of distinct inputs.
// Detectors are built through the plugin loader and the registry like in a pipeline
// and attached with core::attach_detector; a detector plugin that is not found is
// skipped with a printed line. Each time is the best of 3, the measured code and its
// baseline interleaved (the machine may be shared). Threads: LibTorch uses
// $OOD_BENCH_THREADS (default: all cores); OpenBLAS its own pool
// ($OPENBLAS_NUM_THREADS, default: all cores); both are printed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ood/core/build_context.hpp"
#include "ood/core/detector_setup.hpp"
#include "ood/core/plugin_loader.hpp"
#include "ood/core/progress.hpp"
#include "ood/core/validation.hpp"
#include "ood/error.hpp"
#include "ood/model.hpp"
#include "ood/views.hpp"

namespace {

using namespace ood;

constexpr std::int64_t kFit = 50'000, kDim = 640, kClasses = 10, kFitBatch = 500;
constexpr std::int64_t kQueries = 10'000, kQueryBatch = 1'000, kK = 50;
constexpr std::int64_t kImageBatch = 128, kImageBatches = 2;
constexpr std::int64_t kVimD = 64;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Work>
double time_it(Work&& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return seconds_since(t0);
}

// Best of 3 for each of several works, run interleaved (a, b, c, a, b, c, ...) so that
// a change in the machine's load hits all of them alike.
void progress(const std::string& what);
std::vector<double> best_of_3(const std::string& name, const std::vector<std::function<void()>>& works) {
  std::vector<double> best(works.size(), 1e300);
  for (int rep = 0; rep < 3; ++rep) {
    for (std::size_t w = 0; w < works.size(); ++w) best[w] = std::min(best[w], time_it(works[w]));
    progress(name + ": round " + std::to_string(rep + 1) + " of 3");
  }
  return best;
}

// ---- memory: /proc/self/status (kB) ----
std::int64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size());
  return -1;
}
// Resets VmHWM to the current RSS (Linux >= 4.0); false where not allowed.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}
// Progress on stderr with the time since the start (the run is long on a busy machine).
const auto g_start = std::chrono::steady_clock::now();
void progress(const std::string& what) {
  std::fprintf(stderr, "[%7.1f s] %s\n", seconds_since(g_start), what.c_str());
}

double mib(std::int64_t kb) { return static_cast<double>(kb) / 1024.0; }

// Peak of a phase: VmHWM after resetting it (clear_refs), and, as a cross-check that
// does not depend on when the kernel updates VmHWM, the largest VmRSS seen by a thread
// sampling /proc/self/statm every millisecond.
std::int64_t rss_kb_statm() {
  std::ifstream in("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  in >> size >> resident;
  static const std::int64_t page_kb = sysconf(_SC_PAGESIZE) / 1024;
  return resident * page_kb;
}
struct Memory {
  std::int64_t before = 0, peak = 0, sampled_peak = 0, after = 0;  // kB
};
template <class Work>
Memory measure_memory(Work&& work, bool& peak_resettable) {
  peak_resettable = reset_peak() && peak_resettable;
  Memory m;
  m.before = status_kb("VmRSS");
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> sampled{m.before};
  std::thread sampler([&] {
    while (!done.load()) {
      const std::int64_t r = rss_kb_statm();
      if (r > sampled.load()) sampled.store(r);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  work();
  done.store(true);
  sampler.join();
  m.peak = status_kb("VmHWM");
  m.sampled_peak = sampled.load();
  m.after = status_kb("VmRSS");
  return m;
}

// ---- environment ----
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string(fallback);
}
std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}
// The library that provides sgemm_ (LibTorch's BLAS), resolved through the alternatives'
// symlinks, and OpenBLAS's own thread count when it is OpenBLAS.
std::string blas_library() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  std::error_code ec;
  const auto real = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : real.string();
}
int openblas_threads() {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn ? fn() : -1;
}

// ---- components through the registry ----
ComponentSpec spec(const core::Registry& registry, Kind kind, const std::string& plugin, const std::string& params) {
  core::SchemaValidator validator(registry);
  std::vector<core::Diagnostic> diags;
  auto c = validator.component(nlohmann::ordered_json{{"plugin", plugin}, {"params", nlohmann::ordered_json::parse(params)}},
                               kind, "/bench", diags);
  if (!c) {
    std::string why;
    for (const auto& d : diags) why += "\n  " + d.pointer + ": " + d.message;
    throw std::runtime_error("bench: invalid component " + plugin + why);
  }
  return {plugin, Params::from_json_text((*c)["params"].dump(), "/bench/params"), "/detectors/" + plugin};
}

// A model whose "inputs" are precomputed penultimate features: features(x) = x, and a
// linear head of kDim -> kClasses (what ViM reads in attach()).
class FeatureModel final : public Model {
 public:
  FeatureModel(at::Tensor weight, at::Tensor bias) : w_(std::move(weight)), b_(std::move(bias)) {}
  at::Tensor features(const at::Tensor& inputs) override { return inputs; }
  at::Tensor head(const at::Tensor& f) override { return at::addmm(b_, f, w_.t()); }
  std::optional<LinearHead> linear_head() override { return LinearHead{w_, b_}; }
  void set_mode(ModelMode mode) override { mode_ = mode; }
  ModelMode mode() const override { return mode_; }
  void to(at::Device) override {}
  at::Device device() const override { return at::kCPU; }
  std::vector<at::Tensor> parameters() override { return {}; }
  TensorDict state_dict() const override {
    TensorDict d;
    d.set("fc.weight", w_);
    d.set("fc.bias", b_);
    return d;
  }
  void load_state_dict(const TensorDict&) override {}
  ModelInfo info() const override { return {kClasses, kDim, {kDim}}; }

 private:
  at::Tensor w_, b_;
  ModelMode mode_ = ModelMode::Eval;
};

struct Row {
  std::string what;
  double seconds;
  double ratio;  // < 0: this is the baseline
  std::string note;
};

void print_rows(const std::vector<Row>& rows) {
  std::printf("%-46s %10s %8s  %s\n", "what", "seconds", "ratio", "note");
  for (const auto& r : rows) {
    if (r.ratio < 0)
      std::printf("%-46s %10.4f %8s  %s\n", r.what.c_str(), r.seconds, "1 (base)", r.note.c_str());
    else
      std::printf("%-46s %10.4f %8.3f  %s\n", r.what.c_str(), r.seconds, r.ratio, r.note.c_str());
  }
}

}  // namespace

int main() {
  const char* env = std::getenv("OOD_BENCH_THREADS");
  const int threads = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  core::Progress::set_enabled(false);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string load_start = loadavg();

  core::Registry registry;
  core::PluginSearchOptions search;
  core::load_plugins(core::plugin_search_paths(search), registry);
  core::BuildContext ctx(registry, 0);
  auto have = [&](const char* name) {
    if (registry.find(Kind::Detector, name)) return true;
    std::printf("SKIPPED: detector plugin '%s' not found (not built, or not in the plugin path)\n", name);
    return false;
  };
  auto make = [&](const std::string& name, const std::string& params) {
    const ComponentSpec s = spec(registry, Kind::Detector, name, params);
    return std::make_pair(ctx.make_detector(s), s);
  };

  std::printf("threads: at::get_num_threads()=%d OPENBLAS_NUM_THREADS=%s (OpenBLAS pool: %d) "
              "hardware_concurrency=%u\n",
              at::get_num_threads(), env_or("OPENBLAS_NUM_THREADS", "unset").c_str(), openblas_threads(),
              std::thread::hardware_concurrency());
  std::printf("blas: %s\n", blas_library().c_str());
  std::printf("loadavg at start: %s\n", load_start.c_str());
  std::printf("faiss: not used (ood's knn is an exact search with LibTorch matmul; libfaiss-dev is not linked)\n\n");

  at::manual_seed(0);
  // Features: 10 Gaussian classes (means N(0, 4 I)), labels uniform in 0..9; a random
  // linear head 640 -> 10 and its logits (precomputed, outside every timing).
  const at::Tensor fit_labels = at::randint(kClasses, {kFit}, at::kLong);
  const at::Tensor class_means = 2.0 * at::randn({kClasses, kDim});
  const at::Tensor fit_features = (class_means.index_select(0, fit_labels) + at::randn({kFit, kDim})).contiguous();
  const at::Tensor head_w = 0.05 * at::randn({kClasses, kDim});
  const at::Tensor head_b = 0.1 * at::randn({kClasses});
  FeatureModel feature_model(head_w, head_b);
  const at::Tensor fit_logits = at::addmm(head_b, fit_features, head_w.t()).contiguous();

  std::vector<Row> rows;
  bool peak_resettable = true;

  // ---- 1. Mahalanobis and ViM fit / one Gram product ----
  {
    at::NoGradGuard no_grad;
    auto fit = [&](const std::string& name, const std::string& params) {
      auto [det, s] = make(name, params);
      core::attach_detector(*det, s, s.pointer, feature_model, "bench-features");
      for (std::int64_t b = 0; b < kFit; b += kFitBatch) {
        Views views;
        views.set_features(fit_features.slice(0, b, b + kFitBatch));
        views.set_logits(fit_logits.slice(0, b, b + kFitBatch));
        det->fit_batch(views, fit_labels.slice(0, b, b + kFitBatch));
      }
      det->finish_fit();
      if (!det->is_fitted()) throw std::runtime_error("bench: " + name + " is not fitted after finish_fit");
    };
    std::vector<std::function<void()>> works = {[&] { (void)at::mm(fit_features.t(), fit_features); }};
    std::vector<std::string> names;
    if (have("mahalanobis")) {
      works.push_back([&] { fit("mahalanobis", "{}"); });
      names.push_back("mahalanobis fit (eps 0.002, unused in fit)");
    }
    if (have("vim")) {
      works.push_back([&] { fit("vim", R"({"d": 64})"); });
      names.push_back("vim fit (d 64)");
    }
    const std::vector<double> t = best_of_3("fit", works);
    rows.push_back({"gram at::mm(F.t(), F), F 50000x640 f32", t[0], -1, "BLAS bound"});
    for (std::size_t i = 0; i < names.size(); ++i)
      rows.push_back({names[i], t[i + 1], t[i + 1] / t[0], "goal < 2; batches of 500"});
  }

  // ---- 2. KNN: 10,000 queries against 50,000 stored features ----
  std::optional<double> knn_qps, base_qps;
  Memory knn_fit_mem, knn_score_mem, base_copy_mem, base_mem;
  double max_score_diff = -1;
  std::int64_t knn_state_kb = 0;
  {
    at::NoGradGuard no_grad;
    const at::Tensor queries = (class_means.index_select(0, at::randint(kClasses, {kQueries}, at::kLong)) +
                                1.5 * at::randn({kQueries, kDim}))
                                   .contiguous();
    // Baseline: the stored features normalised once (as the detector does when fitting),
    // then per batch: normalise, one addmm for the squared distances, topk, sqrt.
    at::Tensor stored, stored_sq, base_scores;
    auto normalise = [](const at::Tensor& z) { return z / z.norm(2, 1, true).clamp_min(1e-12); };
    auto baseline = [&] {
      std::vector<at::Tensor> out;
      for (std::int64_t b = 0; b < kQueries; b += kQueryBatch) {
        const at::Tensor q = normalise(queries.slice(0, b, b + kQueryBatch));
        const at::Tensor d2 = at::addmm(q.pow(2).sum(1, true) + stored_sq.unsqueeze(0), q, stored.t(), 1.0, -2.0);
        const at::Tensor kth = std::get<0>(at::topk(d2, kK, 1, /*largest=*/false, /*sorted=*/true)).select(1, kK - 1);
        out.push_back(kth.clamp_min(0).sqrt());
      }
      base_scores = at::cat(out);
    };
    std::shared_ptr<Detector> knn;
    at::Tensor knn_scores;
    auto score_knn = [&] {
      std::vector<at::Tensor> out;
      for (std::int64_t b = 0; b < kQueries; b += kQueryBatch) {
        Views views;
        views.set_features(queries.slice(0, b, b + kQueryBatch));
        out.push_back(knn->score(views));
      }
      knn_scores = at::cat(out);
    };
    base_copy_mem = measure_memory(
        [&] {
          stored = normalise(fit_features);
          stored_sq = stored.pow(2).sum(1);
        },
        peak_resettable);
    const bool with_knn = have("knn");
    if (with_knn) {
      auto [det, s] = make("knn", R"({"k": 50, "normalize": true})");
      core::attach_detector(*det, s, s.pointer, feature_model, "bench-features");
      knn = det;
      knn_fit_mem = measure_memory(
          [&] {
            for (std::int64_t b = 0; b < kFit; b += kFitBatch) {
              Views views;
              views.set_features(fit_features.slice(0, b, b + kFitBatch));
              knn->fit_batch(views, fit_labels.slice(0, b, b + kFitBatch));
            }
            knn->finish_fit();
          },
          peak_resettable);
      for (const auto& [name, t] : knn->state()) knn_state_kb += t.numel() * t.element_size() / 1024;
    }
    progress("knn: fitted; scoring");
    // The first of the 3 timed rounds also records the peak memory of each search.
    std::vector<double> t(with_knn ? 2 : 1, 1e300);
    for (int rep = 0; rep < 3; ++rep) {
      if (rep == 0) {
        t[0] = time_it([&] { base_mem = measure_memory(baseline, peak_resettable); });
        if (with_knn) t[1] = time_it([&] { knn_score_mem = measure_memory(score_knn, peak_resettable); });
      } else {
        t[0] = std::min(t[0], time_it(baseline));
        if (with_knn) t[1] = std::min(t[1], time_it(score_knn));
      }
      progress("knn: round " + std::to_string(rep + 1) + " of 3");
    }
    if (with_knn)
      max_score_diff = (knn_scores.to(at::kDouble) - base_scores.to(at::kDouble)).abs().max().item<double>();
    base_qps = kQueries / t[0];
    rows.push_back({"knn baseline: addmm + topk (k 50), 10000 q", t[0], -1,
                    std::to_string(static_cast<long long>(*base_qps)) + " queries/s"});
    if (with_knn) {
      knn_qps = kQueries / t[1];
      rows.push_back({"knn score (k 50, normalize), 10000 q", t[1], t[1] / t[0],
                      std::to_string(static_cast<long long>(*knn_qps)) + " queries/s; batches of 1000"});
    }
  }

  // ---- 3. ODIN and MCD per batch / one forward ----
  if (!registry.find(Kind::Model, "wide-resnet")) {
    std::printf("SKIPPED: odin/mcd: model plugin 'wide-resnet' not found\n");
  } else {
    at::manual_seed(0);
    const ComponentSpec model_spec = [&] {
      core::SchemaValidator validator(registry);
      std::vector<core::Diagnostic> diags;
      auto c = validator.component(
          nlohmann::ordered_json{{"plugin", "wide-resnet"},
                                 {"params", {{"num_classes", 10}, {"depth", 16}, {"widen_factor", 2}}}},
          Kind::Model, "/model", diags);
      if (!c) throw std::runtime_error("bench: invalid wide-resnet spec");
      return ComponentSpec{"wide-resnet", Params::from_json_text((*c)["params"].dump(), "/model/params"), "/model"};
    }();
    std::shared_ptr<Model> model = ctx.make_model(model_spec);
    model->set_mode(ModelMode::Eval);
    const at::Tensor x = at::randn({kImageBatches * kImageBatch, 3, 32, 32});
    auto batch = [&](std::int64_t i) { return x.slice(0, i * kImageBatch, (i + 1) * kImageBatch); };
    auto per_batch = [&](const std::function<void(const at::Tensor&)>& one) {
      return [&, one] {
        at::NoGradGuard no_grad;
        for (std::int64_t i = 0; i < kImageBatches; ++i) one(batch(i));
      };
    };
    std::vector<std::function<void()>> works = {per_batch([&](const at::Tensor& b) { (void)model->logits(b); })};
    std::vector<std::string> names;
    std::vector<std::shared_ptr<Detector>> dets;
    auto add = [&](const char* name, const std::string& params, const std::string& label) {
      if (!have(name)) return;
      auto [det, s] = make(name, params);
      core::attach_detector(*det, s, s.pointer, *model, "wide-resnet");
      dets.push_back(det);
      Detector* d = det.get();
      works.push_back(per_batch([&, d](const at::Tensor& b) {
        Views views(*model, b);
        const at::Tensor scores = d->score(views);
        if (scores.size(0) != b.size(0)) throw std::runtime_error("bench: wrong score shape");
      }));
      names.push_back(label);
    };
    add("odin", R"({"eps": 0.002, "temperature": 1000})", "odin score (eps 0.002, T 1000)");
    add("mcd", R"({"samples": 10})", "mcd score (samples 10, mode var)");
    const std::vector<double> t = best_of_3("odin/mcd", works);
    rows.push_back({"forward wrn-16-2 (eval), batch 128", t[0] / kImageBatches, -1, "per batch"});
    for (std::size_t i = 0; i < names.size(); ++i)
      rows.push_back({names[i], t[i + 1] / kImageBatches, t[i + 1] / t[0], "per batch"});
  }

  std::printf("\n");
  print_rows(rows);
  std::printf("\nknn memory, MiB: VmRSS before -> peak (VmHWM%s | sampled VmRSS) -> VmRSS after\n",
              peak_resettable ? ", reset before each phase" : " NOT resettable: process peak");
  auto mem_line = [](const char* what, const Memory& m) {
    std::printf("  %-40s %5.0f -> %5.0f | %5.0f -> %5.0f  (peak +%.0f)\n", what, mib(m.before), mib(m.peak),
                mib(m.sampled_peak), mib(m.after), mib(std::max(m.peak, m.sampled_peak) - m.before));
  };
  mem_line("baseline: its normalised copy", base_copy_mem);
  mem_line("baseline: 1st search, 10 batches of 1000", base_mem);
  if (knn_qps) {
    mem_line("knn fit (keeps the features)", knn_fit_mem);
    mem_line("knn score (1st run, 10 batches of 1000)", knn_score_mem);
    std::printf("  knn state: %.1f MiB; max |knn - baseline| score difference: %.2e\n", mib(knn_state_kb),
                max_score_diff);
  }
  std::printf("\nloadavg at end: %s\n", loadavg().c_str());
  return 0;
}
