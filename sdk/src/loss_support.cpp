#include "ood/loss_support.hpp"

#include <ATen/ATen.h>

#include "ood/checks.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/model.hpp"
#include "ood/params.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/views.hpp"

namespace ood {

namespace {

std::string str(std::int64_t v) { return std::to_string(v); }

bool is_integer_like(const at::Tensor& t) {
  return !at::isFloatingType(t.scalar_type()) && t.scalar_type() != at::kBool;
}

}  // namespace

// ---- targets and reductions ----

void require_sample_targets(const at::Tensor& targets, const at::Tensor& batch, std::string_view what,
                            std::string_view who) {
  if (!is_integer_like(targets) || targets.dim() != 1 || targets.size(0) != batch.size(0))
    throw ShapeError(std::string(who) + ": targets must be integers [N] matching " + std::string(what) + " " +
                     describe_tensor(batch) + ", got " + describe_tensor(targets));
}

void require_targets_below(const at::Tensor& targets, std::int64_t n_classes, std::string_view who) {
  if (targets.numel() > 0 && (targets >= n_classes).any().item<bool>())
    throw ShapeError(std::string(who) + ": a target is >= the number of classes " + str(n_classes));
}

void require_dense_targets(const at::Tensor& targets, const at::Tensor& logits, std::string_view who) {
  bool ok = is_integer_like(targets) && targets.dim() == logits.dim() - 1;
  for (std::int64_t d = 0; ok && d < targets.dim(); ++d) ok = targets.size(d) == logits.size(d == 0 ? 0 : d + 1);
  if (!ok)
    throw ShapeError(std::string(who) + ": targets must be integers [N] or [N, H, W] matching logits " +
                     describe_tensor(logits) + ", got " + describe_tensor(targets));
}

void check_dense_logits_and_targets(const at::Tensor& logits, const at::Tensor& targets, std::string_view who) {
  if (!at::isFloatingType(logits.scalar_type()) || (logits.dim() != 2 && logits.dim() != 4))
    throw ShapeError(std::string(who) + ": logits must be floating [N, C] or [N, C, H, W], got " +
                     describe_tensor(logits));
  require_dense_targets(targets, logits, who);
  require_targets_below(targets, logits.size(1), who);
}

at::Tensor reduce(const at::Tensor& per_entry, std::string_view reduction) {
  if (reduction == "none") return per_entry;
  if (reduction == "sum") return per_entry.sum();
  return per_entry.mean();
}

// ---- a trained loss in a training state file ----

TensorDict load_loss_state(const std::filesystem::path& file) {
  const TensorDict all = io::load_state_dict(file);
  TensorDict out;
  for (const auto& [key, value] : all)
    if (key.rfind("loss.", 0) == 0) out.set(key.substr(5), value);
  return out;
}

void restore_loss_state(Loss& loss, const std::filesystem::path& file) {
  try {
    loss.load_state(load_loss_state(file));
  } catch (const StateError& e) {
    throw StateError(file.string() + ": " + e.what());
  }
}

// ---- embeddings ----

ParamSpec embedding_param() {
  return ParamSpec::choice("embedding", {"logits", "features"},
                           "the embedding: the model's output (logits, as pytorch-ood's examples) or the "
                           "penultimate features")
      .default_value("logits");
}

EmbeddingSource embedding_source(const Params& params) {
  return params.get_string("embedding") == "features" ? EmbeddingSource::Features : EmbeddingSource::Logits;
}

const char* embedding_name(EmbeddingSource source) {
  return source == EmbeddingSource::Features ? "features" : "logits";
}

std::int64_t embedding_size(const ModelInfo& info, EmbeddingSource source) {
  return source == EmbeddingSource::Features ? info.feature_dim : info.num_classes;
}

const at::Tensor& select_embedding(Views& views, EmbeddingSource source, std::string_view who) {
  const at::Tensor& z = source == EmbeddingSource::Features ? views.features() : views.logits();
  require_floating(z, who, embedding_name(source), 2, "[N, D]");
  return z;
}

void request_embedding(DetectorNeeds& needs, EmbeddingSource source) {
  (source == EmbeddingSource::Features ? needs.features : needs.logits) = true;
}

at::Tensor integer_targets(const at::Tensor& z, const at::Tensor& targets, std::string_view who) {
  require_sample_targets(targets, z, "the embedding", who);
  return targets.to(z.device(), at::kLong);
}

at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& c) {
  const at::Tensor xn = x.pow(2).sum(1).view({-1, 1});
  const at::Tensor cn = c.pow(2).sum(1).view({1, -1});
  return (xn + cn - 2.0 * at::mm(x, c.t())).clamp_min(0);
}

void check_class_count(std::optional<std::int64_t> given, std::int64_t model_classes, const std::string& pointer,
                       std::string_view param) {
  if (given && *given != model_classes)
    throw InvalidArgument(pointer + ": " + std::string(param) + " is " + str(*given) + " but the model has " +
                          str(model_classes) + " classes");
}

void check_embedding_size(std::optional<std::int64_t> given, std::int64_t size, EmbeddingSource source,
                          const std::string& pointer, std::string_view param) {
  if (given && *given != size)
    throw InvalidArgument(pointer + ": " + std::string(param) + " is " + str(*given) + " but the embedding (" +
                          embedding_name(source) + ") has " + str(size) + " dimensions");
}

// ---- CenterTable ----

CenterSizes CenterSizes::from_params(const Params& params, const std::string& dim_param) {
  CenterSizes s;
  if (params.has("n_classes")) s.n_classes = params.get_int("n_classes");
  if (params.has(dim_param)) s.n_dim = params.get_int(dim_param);
  s.classes_pointer = params.pointer("n_classes");
  s.dim_pointer = params.pointer(dim_param);
  return s;
}

CenterSizes CenterSizes::from_checkpoint(const Params& params) {
  CenterSizes s;
  s.classes_pointer = params.pointer("checkpoint");
  s.dim_pointer = params.pointer("checkpoint");
  return s;
}

CenterTable::CenterTable(std::string who, std::string key, std::string dim_param, EmbeddingSource source,
                         CenterSizes sizes)
    : who_(std::move(who)),
      key_(std::move(key)),
      dim_param_(std::move(dim_param)),
      source_(source),
      n_classes_(sizes.n_classes),
      n_dim_(sizes.n_dim),
      classes_pointer_(std::move(sizes.classes_pointer)),
      dim_pointer_(std::move(sizes.dim_pointer)) {}

at::Tensor CenterTable::initial(std::int64_t c, std::int64_t d, std::uint64_t seed) {
  if (c == d) return at::eye(c, at::kFloat);
  at::Generator gen = make_generator(seed);
  return at::randn({c, d}, gen, at::kFloat);
}

void CenterTable::attach(const Model& model) {
  const ModelInfo info = model.info();
  const std::int64_t c = info.num_classes;
  const std::int64_t d = embedding_size(info, source_);
  check_class_count(n_classes_, c, classes_pointer_);
  check_embedding_size(n_dim_, d, source_, dim_pointer_, dim_param_);
  if (centers_.defined() && (centers_.size(0) != c || centers_.size(1) != d))
    throw InvalidArgument(classes_pointer_ + ": " + who_ + " has centres " + describe_tensor(centers_) +
                          " but the model needs [" + str(c) + ", " + str(d) + "]");
  n_classes_ = c;
  n_dim_ = d;
}

const at::Tensor& CenterTable::embedding(Views& views) const { return select_embedding(views, source_, who_); }

void CenterTable::require_embedding(const at::Tensor& z) const {
  if (!centers_.defined())
    throw StateError(who_ + ": the number of classes or the embedding size is unknown (attach the loss to a model)");
  if (z.size(1) != centers_.size(1))
    throw ShapeError(who_ + ": the embedding must be [N, " + str(centers_.size(1)) + "], got " + describe_tensor(z));
}

at::Tensor CenterTable::distances(const at::Tensor& z) const {
  require_embedding(z);
  return squared_distances(z, centers_.to(z.device(), z.scalar_type()));
}

at::Tensor CenterTable::targets(const at::Tensor& z, const at::Tensor& targets) const {
  const at::Tensor y = integer_targets(z, targets, who_);
  require_targets_below(y, centers_.size(0), who_);
  return y;
}

void CenterTable::check_state(const at::Tensor& c) const {
  if (!at::isFloatingType(c.scalar_type()) || c.dim() != 2 || (n_classes_ && c.size(0) != *n_classes_) ||
      (n_dim_ && c.size(1) != *n_dim_))
    throw StateError(who_ + ": state '" + key_ + "' must be floating [" + (n_classes_ ? str(*n_classes_) : "C") +
                     ", " + (n_dim_ ? str(*n_dim_) : "D") + "], got " + describe_tensor(c));
}

void CenterTable::assign(const at::Tensor& c, bool requires_grad) {
  at::NoGradGuard no_grad;
  if (centers_.defined() && centers_.sizes() == c.sizes() && centers_.scalar_type() == c.scalar_type()) {
    centers_.copy_(c);  // in place: an optimiser holding the parameter keeps it
  } else {
    centers_ = c.detach().clone();
    if (requires_grad) centers_.requires_grad_(true);
  }
  n_classes_ = c.size(0);
  n_dim_ = c.size(1);
}

void CenterTable::load(const TensorDict& state, bool requires_grad) {
  if (state.size() != 1 || !state.contains(key_))
    throw StateError(who_ + ": expected a state holding one tensor, '" + key_ + "'");
  check_state(state.at(key_));
  assign(state.at(key_), requires_grad);
}

TensorDict CenterTable::state() const {
  TensorDict s;
  if (centers_.defined()) s.set(key_, centers_.detach().clone());
  return s;
}

// ---- NearestCenterDetector ----

NearestCenterDetector::NearestCenterDetector(std::shared_ptr<Loss> loss, const CenterTable& centers, std::string file)
    : loss_(std::move(loss)), centers_(centers), file_(std::move(file)) {}

NearestCenterDetector::~NearestCenterDetector() = default;

std::shared_ptr<NearestCenterDetector> NearestCenterDetector::from_checkpoint(std::shared_ptr<Loss> loss,
                                                                              const CenterTable& centers,
                                                                              const std::filesystem::path& file) {
  restore_loss_state(*loss, file);
  return std::make_shared<NearestCenterDetector>(std::move(loss), centers, file.string());
}

DetectorNeeds NearestCenterDetector::needs() const {
  DetectorNeeds n;
  request_embedding(n, centers_.source());
  return n;
}

void NearestCenterDetector::attach(Model& model) {
  try {
    loss_->attach(model);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(e.what()) + " (centres from " + file_ + ")");
  }
}

at::Tensor NearestCenterDetector::score(Views& views) {
  at::NoGradGuard no_grad;
  return std::get<0>(centers_.distances(centers_.embedding(views)).min(1));
}

// ---- HypersphereLoss ----

HypersphereLoss::Config HypersphereLoss::config_of(const Params& p, std::string who, std::string size_param) {
  Config cfg;
  cfg.who = std::move(who);
  cfg.size_param = std::move(size_param);
  if (p.has(cfg.size_param)) {
    cfg.size = p.get_int(cfg.size_param);
    cfg.size_given = true;
  }
  cfg.radius = static_cast<float>(p.get_float("radius"));
  if (p.has("reduction")) cfg.reduction = p.get_string("reduction");
  cfg.source = embedding_source(p);
  if (p.has("center")) {
    const auto v = p.get_float_list("center");
    cfg.center = at::tensor(std::vector<float>(v.begin(), v.end()), at::kFloat).view({1, -1});
  }
  cfg.size_pointer = p.pointer(cfg.size_param);
  cfg.center_pointer = p.pointer("center");
  return cfg;
}

HypersphereLoss::HypersphereLoss(Config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.center.defined()) {
    if (cfg_.size && *cfg_.size != cfg_.center.size(1))
      throw InvalidArgument(cfg_.center_pointer + ": the centre has " + str(cfg_.center.size(1)) + " entries but " +
                            cfg_.size_param + " is " + str(*cfg_.size));
    center_ = cfg_.center;
    cfg_.size = center_.size(1);
  }
}

HypersphereLoss::~HypersphereLoss() = default;

at::Tensor HypersphereLoss::forward(Views& views, const at::Tensor& targets) {
  const at::Tensor& z = embedding(views);
  const at::Tensor y = integer_targets(z, targets, cfg_.who);
  const at::Tensor known = y >= 0;
  if (!center_.defined()) {
    // the paper's initialisation: the mean embedding of the first (IN) training batch
    if (!known.any().item<bool>()) return reduce(z.sum(1) * 0.0, cfg_.reduction);
    at::NoGradGuard no_grad;
    center_ = z.detach().index({known}).mean(0, /*keepdim=*/true).to(at::kCPU).clone();
  }
  const at::Tensor sq = squared_distances(z, center_.to(z.device(), z.scalar_type())).squeeze(1);  // ||z - c||^2
  const at::Tensor r2 = at::scalar_tensor(cfg_.radius, at::kFloat).pow(2).to(z.device(), z.scalar_type());
  const at::Tensor d = sq - r2;
  return reduce(at::where(known, d.relu(), outlier_term(sq, known)), cfg_.reduction);
}

void HypersphereLoss::attach(Model& model) {
  const std::int64_t d = embedding_size(model.info(), cfg_.source);
  if (cfg_.size && *cfg_.size != d)
    throw InvalidArgument((cfg_.center.defined() && !cfg_.size_given ? cfg_.center_pointer : cfg_.size_pointer) +
                          ": " + cfg_.who + " needs an embedding of " + str(*cfg_.size) +
                          " dimensions, but the model's " + embedding_name(cfg_.source) + " have " + str(d));
  cfg_.size = d;
}

TensorDict HypersphereLoss::state() const {
  TensorDict s;
  if (center_.defined()) s.set(kCenterKey, center_.clone());
  return s;
}

void HypersphereLoss::load_state(const TensorDict& state) {
  if (state.empty() && !center_.defined()) return;  // saved before the first batch set the centre
  if (state.size() != 1 || !state.contains(kCenterKey))
    throw StateError(cfg_.who + ": expected a state holding one tensor, '" + kCenterKey + "'");
  const at::Tensor& c = state.at(kCenterKey);
  if (!at::isFloatingType(c.scalar_type()) || c.dim() != 2 || c.size(0) != 1 || (cfg_.size && c.size(1) != *cfg_.size))
    throw StateError(cfg_.who + ": state '" + kCenterKey + "' must be floating [1, " +
                     (cfg_.size ? str(*cfg_.size) : "D") + "], got " + describe_tensor(c));
  center_ = c.detach().clone();
  cfg_.size = c.size(1);
}

const at::Tensor& HypersphereLoss::embedding(Views& views) const {
  const at::Tensor& z = select_embedding(views, cfg_.source, cfg_.who);
  check_dim(z);
  return z;
}

at::Tensor HypersphereLoss::distance(const at::Tensor& z) const {
  if (!center_.defined())
    throw StateError(cfg_.who + ": the centre is not set (give 'center' or train on a batch first)");
  const at::Tensor r2 = at::scalar_tensor(cfg_.radius, at::kFloat).pow(2).to(z.device(), z.scalar_type());
  return squared_distances(z, center_.to(z.device(), z.scalar_type())).squeeze(1) - r2;
}

void HypersphereLoss::check_dim(const at::Tensor& z) const {
  if (cfg_.size && z.size(1) != *cfg_.size)
    throw ShapeError(cfg_.who + ": the embedding must be [N, " + str(*cfg_.size) + "], got " + describe_tensor(z));
}

namespace {

/// Scores with the distance to the centre of a hypersphere loss (trained or given).
class HypersphereDetector final : public Detector {
 public:
  explicit HypersphereDetector(std::shared_ptr<HypersphereLoss> loss) : loss_(std::move(loss)) {}

  DetectorNeeds needs() const override {
    DetectorNeeds n;
    request_embedding(n, loss_->source());
    return n;
  }
  void attach(Model& model) override { loss_->attach(model); }
  at::Tensor score(Views& views) override {
    at::NoGradGuard no_grad;
    return loss_->distance(loss_->embedding(views));
  }

 private:
  std::shared_ptr<HypersphereLoss> loss_;
};

}  // namespace

void register_hypersphere(Registrar& registrar, ComponentInfo loss, ComponentInfo detector,
                          const std::string& size_param, HypersphereFactory make) {
  const std::string who = loss.name;
  loss.kind = Kind::Loss;
  loss.params = {
      ParamSpec::integer(size_param, "embedding size D (default: the model's logits or features)")
          .optional()
          .min(1.0, false),
      ParamSpec::real("radius", "radius r of the hypersphere").default_value(0.0).min(0.0, false),
      ParamSpec::list("center", ParamType::Float, "the centre c (D numbers); default: mean of the first batch")
          .optional()
          .items(1),
      ParamSpec::choice("reduction", {"mean", "sum", "none"}, "how the samples' losses are combined")
          .default_value("mean"),
      embedding_param(),
  };
  registrar.add_loss(std::move(loss), [make, who, size_param](const Params& p, Context&) {
    return make(HypersphereLoss::config_of(p, who, size_param));
  });

  detector.kind = Kind::Detector;
  detector.params = {
      ParamSpec::path("checkpoint", "training state file holding loss._center._params").optional(),
      ParamSpec::list("center", ParamType::Float, "the centre c, instead of a checkpoint").optional().items(1),
      ParamSpec::real("radius", "radius r subtracted (squared) from the score").default_value(0.0).min(0.0, false),
      embedding_param(),
  };
  detector.check = [](const Params& p) {
    if (p.has("checkpoint") == p.has("center"))
      throw InvalidArgument(p.pointer("checkpoint") + ": give exactly one of 'checkpoint' and 'center'");
  };
  registrar.add_detector(detector, [check = detector.check, make, who, size_param](const Params& p, Context&) {
    check(p);
    HypersphereLoss::Config cfg = HypersphereLoss::config_of(p, who, size_param);
    if (p.has("checkpoint")) cfg.size_pointer = p.pointer("checkpoint");  // the centre's size comes from there
    std::shared_ptr<HypersphereLoss> loss = make(std::move(cfg));
    if (p.has("checkpoint")) {
      const auto file = p.get_path("checkpoint");
      restore_loss_state(*loss, file);
      if (!loss->has_center())
        throw StateError(file.string() + ": holds no " + who + " centre (loss." + HypersphereLoss::kCenterKey + ")");
    }
    return std::make_shared<HypersphereDetector>(loss);
  });
}

}  // namespace ood
