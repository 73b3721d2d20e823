// Pixel-shuffled images of another dataset, labelled OOD (-1): an auxiliary outlier
// set for outlier exposure that is made from the training data alone.
//
// Each sample's pixel positions are permuted (the same permutation for every channel,
// drawn from (seed, index)), which keeps the image's intensity histogram and colours
// but destroys every shape. Such images are not in-distribution, and since they are
// derived from the TRAINING split of the in-distribution data they share nothing with
// the test OOD sets: a model trained to be uncertain on them is not being shown the
// outliers it is later evaluated on. (Local pixel shuffles as outliers: e.g. the
// "permuted pixels" corruption used as synthetic OOD data in Hendrycks et al. 2019.)
#include <ATen/ATen.h>

#include "ood/context.hpp"
#include "ood/dataset.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"
#include "ood/checks.hpp"

namespace {

class PixelShuffle final : public ood::Dataset {
 public:
  PixelShuffle(std::shared_ptr<ood::Dataset> base, std::uint64_t seed, std::int64_t size)
      : base_(std::move(base)), seed_(seed), size_(size > 0 ? std::min(size, base_->size()) : base_->size()) {}

  std::int64_t size() const override { return size_; }

  ood::Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size_)
      throw ood::InvalidArgument("pixel-shuffle: index " + std::to_string(index) + " out of range [0, " +
                                 std::to_string(size_) + ")");
    ood::Sample s = base_->get(index);
    const at::Tensor& x = s.input;
    if (x.dim() != 3)
      throw ood::ShapeError("pixel-shuffle: expects images [C, H, W], got " + ood::describe_tensor(x));
    at::Generator gen = ood::make_generator(ood::mix_seed(seed_, static_cast<std::uint64_t>(index)));
    const std::int64_t pixels = x.size(1) * x.size(2);
    const at::Tensor perm = at::randperm(pixels, gen, at::TensorOptions().dtype(at::kLong));
    s.input = x.reshape({x.size(0), pixels}).index_select(1, perm).reshape(x.sizes());
    s.target = at::scalar_tensor(-1, at::kLong);
    return s;
  }

  ood::DatasetInfo info() const override {
    ood::DatasetInfo i = base_->info();
    i.classes.clear();
    return i;
  }
  at::Tensor labels() const override { return at::full({size_}, -1, at::kLong); }

 private:
  std::shared_ptr<ood::Dataset> base_;
  std::uint64_t seed_;
  std::int64_t size_;
};

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "pixel-shuffle";
  info.summary = "images of another dataset with their pixels permuted, labelled OOD (-1)";
  info.doc =
      "Sample i = sample i of `dataset` with its H*W pixel positions permuted (one permutation,\n"
      "drawn from (seed, i), for all channels); label -1. Keeps intensities and colours, destroys\n"
      "shape: an auxiliary outlier set for outlier exposure made from the training split alone,\n"
      "so it shares nothing with the test OOD sets. `size` keeps the first N samples (0 = all).";
  info.params = {
      ood::ParamSpec::component("dataset", ood::Kind::Dataset, "the images to shuffle"),
      ood::ParamSpec::integer("size", "use the first N samples (0 = all)").default_value(0).min(0),
      ood::ParamSpec::integer("seed", "seed of the permutations (default: from the pipeline's seed)").optional().min(0),
  };
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context& ctx) {
    return std::make_shared<PixelShuffle>(ctx.make_dataset(p.get_component("dataset")),
                                          ood::component_seed(p, ctx, "pixel-shuffle"), p.get_int("size"));
  });
}

}  // namespace

OOD_PLUGIN("pixel-shuffle", "Pixel-shuffled images as auxiliary outliers", register_components)
