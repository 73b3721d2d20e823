#pragma once
// What loss plugins share, so that every loss checks, reduces and restores the same way
// and says so in the same words (`who` is the component's name in messages):
//   * targets: integer class indices per sample (or per pixel), < 0 for OOD samples;
//   * reductions: 'mean' over ALL entries (OOD ones included, as pytorch-ood), 'sum', 'none';
//   * the loss's entries ("loss.<name>") of a training state file, for the detectors
//     that score with a trained loss;
//   * embeddings: losses on the logits or on the penultimate features (the "embedding"
//     parameter), squared distances of an embedding to centres, a table of class centres
//     [C, D], and a loss on the distance to one centre on a hypersphere with its detector.
#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ood/detector.hpp"
#include "ood/export.hpp"
#include "ood/loss.hpp"
#include "ood/tensor_dict.hpp"

namespace ood {

class Model;
class ParamSpec;
class Params;
class Registrar;
class Views;
struct ComponentInfo;
struct ModelInfo;

// ---- targets and reductions ----

/// Requires `targets` to be an integer tensor [N] with N = batch.size(0); otherwise
/// ood::ShapeError "<who>: targets must be integers [N] matching <what> <batch>, got ..."
/// (`what`: "logits", "the embedding").
OOD_SDK_API void require_sample_targets(const at::Tensor& targets, const at::Tensor& batch, std::string_view what,
                                        std::string_view who);

/// ood::ShapeError "<who>: a target is >= the number of classes <n_classes>" when one is.
OOD_SDK_API void require_targets_below(const at::Tensor& targets, std::int64_t n_classes, std::string_view who);

/// Requires integer targets [N] or [N, H, W] matching logits [N, C] or [N, C, H, W]
/// (classification or segmentation, class axis 1); ood::ShapeError otherwise.
OOD_SDK_API void require_dense_targets(const at::Tensor& targets, const at::Tensor& logits, std::string_view who);

/// Logits floating [N, C] or [N, C, H, W] with targets as require_dense_targets, each < C.
OOD_SDK_API void check_dense_logits_and_targets(const at::Tensor& logits, const at::Tensor& targets,
                                                std::string_view who);

/// 'none': the entries themselves; 'sum': their sum; otherwise ('mean') their mean.
OOD_SDK_API at::Tensor reduce(const at::Tensor& per_entry, std::string_view reduction);

// ---- a trained loss in a training state file ----

/// The entries "loss.<name>" of a training state file (as the trainer writes them), under
/// <name>. Throws ood::FileError for a file that cannot be read.
OOD_SDK_API TensorDict load_loss_state(const std::filesystem::path& file);

/// loss.load_state(load_loss_state(file)), an ood::StateError prefixed with the file's name.
OOD_SDK_API void restore_loss_state(Loss& loss, const std::filesystem::path& file);

// ---- embeddings ----

/// The view a loss on an embedding works on.
enum class EmbeddingSource { Logits, Features };

/// The "embedding" parameter: "logits" (the default, as pytorch-ood's examples) or "features".
OOD_SDK_API ParamSpec embedding_param();
/// The source the "embedding" parameter of `params` selects.
OOD_SDK_API EmbeddingSource embedding_source(const Params& params);
/// "logits" or "features".
OOD_SDK_API const char* embedding_name(EmbeddingSource source);
/// The model's embedding size: its number of classes (logits) or its feature size.
OOD_SDK_API std::int64_t embedding_size(const ModelInfo& info, EmbeddingSource source);
/// The view, required floating [N, D] (ood::ShapeError naming `who` otherwise).
OOD_SDK_API const at::Tensor& select_embedding(Views& views, EmbeddingSource source, std::string_view who);
/// Sets the flag of the view in a detector's needs.
OOD_SDK_API void request_embedding(DetectorNeeds& needs, EmbeddingSource source);

/// require_sample_targets against the embedding z, then the targets as int64 on z's device.
OOD_SDK_API at::Tensor integer_targets(const at::Tensor& z, const at::Tensor& targets, std::string_view who);

/// pytorch_ood.utils.pairwise_distances: d[i, k] = |x_i|^2 + |c_k|^2 - 2 x_i . c_k, clamped
/// at 0 ([N, D] and [K, D] -> [N, K]).
OOD_SDK_API at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& c);

/// A number of classes given as the parameter `param` against the model's: ood::InvalidArgument
/// "<pointer>: <param> is <given> but the model has <model_classes> classes".
OOD_SDK_API void check_class_count(std::optional<std::int64_t> given, std::int64_t model_classes,
                                   const std::string& pointer, std::string_view param = "n_classes");
/// An embedding size given as the parameter `param` against the model's: ood::InvalidArgument
/// "<pointer>: <param> is <given> but the embedding (<logits|features>) has <size> dimensions".
OOD_SDK_API void check_embedding_size(std::optional<std::int64_t> given, std::int64_t size, EmbeddingSource source,
                                      const std::string& pointer, std::string_view param);

/// The sizes of a table of class centres given as parameters (nullopt: taken from the model
/// or the state) and the JSON pointers that messages name for them.
struct OOD_SDK_API CenterSizes {
  std::optional<std::int64_t> n_classes, n_dim;
  std::string classes_pointer, dim_pointer;

  /// From the parameters "n_classes" and `dim_param` (both optional).
  static CenterSizes from_params(const Params& params, const std::string& dim_param);
  /// Both unknown, to be read from the training state file of the parameter "checkpoint",
  /// which messages name.
  static CenterSizes from_checkpoint(const Params& params);
};

/// Class centres [C, D] in an embedding, kept by a loss as one state entry: their sizes
/// (given as parameters, else fixed by the model or the state), the checks and messages
/// around them, and the squared distances to them.
class OOD_SDK_API CenterTable {
 public:
  /// `key`: the state entry; `dim_param`: the name of the embedding-size parameter.
  CenterTable(std::string who, std::string key, std::string dim_param, EmbeddingSource source, CenterSizes sizes);

  const std::optional<std::int64_t>& n_classes() const { return n_classes_; }
  const std::optional<std::int64_t>& n_dim() const { return n_dim_; }
  EmbeddingSource source() const { return source_; }
  const std::string& key() const { return key_; }

  bool defined() const { return centers_.defined(); }
  /// The centres (undefined until created, attached or loaded); the loss creates and
  /// updates them through this reference.
  at::Tensor& centers() { return centers_; }
  const at::Tensor& centers() const { return centers_; }

  /// pytorch-ood's initialisation: eye(C) when C == D, else standard normal from `seed`
  /// (float32, without requires_grad).
  static at::Tensor initial(std::int64_t c, std::int64_t d, std::uint64_t seed);

  /// For Loss::attach: the given sizes against the model's (ood::InvalidArgument naming
  /// the parameter's pointer; also for existing centres of other sizes), then both taken
  /// from the model. The loss creates its centres afterwards when there are none.
  void attach(const Model& model);

  /// The embedding view, floating [N, D].
  const at::Tensor& embedding(Views& views) const;
  /// ood::StateError before the centres exist, ood::ShapeError for an embedding of another D.
  void require_embedding(const at::Tensor& z) const;
  /// Squared distances of the embedding to every centre [N, C] (require_embedding first).
  at::Tensor distances(const at::Tensor& z) const;
  /// integer_targets, each < C.
  at::Tensor targets(const at::Tensor& z, const at::Tensor& targets) const;

  /// ood::StateError unless `c` is a floating [C, D] tensor of the expected sizes.
  void check_state(const at::Tensor& c) const;
  /// Replaces the centres by `c` (its sizes become the expected ones): in place when the
  /// shape and dtype agree, so that an optimiser holding the parameter keeps it; else a
  /// copy, requiring grad when `requires_grad`.
  void assign(const at::Tensor& c, bool requires_grad);
  /// For Loss::load_state of a state holding only the centres: checks it, then assign().
  void load(const TensorDict& state, bool requires_grad);
  /// {key: a copy of the centres}, empty before they exist.
  TensorDict state() const;

 private:
  std::string who_, key_, dim_param_;
  EmbeddingSource source_;
  std::optional<std::int64_t> n_classes_, n_dim_;
  std::string classes_pointer_, dim_pointer_;
  at::Tensor centers_;  // [C, D]
};

/// Scores with the squared distance to the nearest centre of a trained loss,
/// min_k ||z - mu_k||^2 (larger for outliers). `centers` belongs to `loss`, which the
/// detector keeps alive; attach() attaches the loss and names `file`, where the centres
/// come from, in its errors.
class OOD_SDK_API NearestCenterDetector final : public Detector {
 public:
  NearestCenterDetector(std::shared_ptr<Loss> loss, const CenterTable& centers, std::string file);
  ~NearestCenterDetector() override;

  /// The detector of `loss` restored from the training state file `file` (restore_loss_state).
  static std::shared_ptr<NearestCenterDetector> from_checkpoint(std::shared_ptr<Loss> loss, const CenterTable& centers,
                                                                const std::filesystem::path& file);

  DetectorNeeds needs() const override;
  void attach(Model& model) override;
  at::Tensor score(Views& views) override;

 private:
  std::shared_ptr<Loss> loss_;
  const CenterTable& centers_;
  std::string file_;
};

/// A loss on the squared distance d_i = ||z_i - c||^2 of an embedding to one fixed centre
/// c [1, D] and a radius r (float32, as pytorch-ood keeps it): loss_i = relu(d_i - r^2) for
/// IN samples and a term of the subclass for OOD samples (y < 0), then the reduction.
/// Without a given centre, c is the mean embedding of the IN samples of the first training
/// batch (a batch without IN samples before that gives 0). State: "_center._params" [1, D].
class OOD_SDK_API HypersphereLoss : public Loss {
 public:
  static constexpr const char* kCenterKey = "_center._params";  // pytorch-ood's state_dict key

  struct Config {
    std::string who;         // the component's name
    std::string size_param;  // the name of its embedding-size parameter
    std::optional<std::int64_t> size;
    bool size_given = false;
    float radius = 0;
    std::string reduction = "mean";
    EmbeddingSource source = EmbeddingSource::Logits;
    at::Tensor center;  // [1, D] when given
    std::string size_pointer, center_pointer;
  };
  /// From the parameters register_hypersphere() declares.
  static Config config_of(const Params& params, std::string who, std::string size_param);

  explicit HypersphereLoss(Config cfg);
  ~HypersphereLoss() override;

  at::Tensor forward(Views& views, const at::Tensor& targets) final;
  void attach(Model& model) override;
  TensorDict state() const override;
  void load_state(const TensorDict& state) override;

  /// The embedding view, floating [N, D] with the centre's D when it is known.
  const at::Tensor& embedding(Views& views) const;
  /// ||z - c||^2 - r^2 [N]; ood::StateError before the centre is set.
  at::Tensor distance(const at::Tensor& z) const;
  EmbeddingSource source() const { return cfg_.source; }
  bool has_center() const { return center_.defined(); }

 protected:
  /// The loss of the OOD samples from the squared distances `sq` [N] of all samples
  /// (`known`: the IN samples, whose entries are not used).
  virtual at::Tensor outlier_term(const at::Tensor& sq, const at::Tensor& known) const = 0;

 private:
  void check_dim(const at::Tensor& z) const;
  Config cfg_;
  at::Tensor center_;  // [1, D], fixed
};

using HypersphereFactory = std::function<std::shared_ptr<HypersphereLoss>(HypersphereLoss::Config)>;

/// Registers the loss `loss` and the detector `detector` (name, summary, paper, year and doc
/// filled in; the parameters are declared here) of one hypersphere method. The loss takes
/// `size_param`, radius, center, reduction and embedding; the detector scores with
/// distance() (larger for outliers) from exactly one of a training state file
/// ("checkpoint", entry loss._center._params) and a "center".
OOD_SDK_API void register_hypersphere(Registrar& registrar, ComponentInfo loss, ComponentInfo detector,
                                      const std::string& size_param, HypersphereFactory make);

}  // namespace ood
