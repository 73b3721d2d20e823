// Images of Gaussian noise, like pytorch-ood's GaussianNoise: pixel values drawn from
// N(loc, scale^2) on the 0..255 scale, clipped to [0, 255] and truncated to integers,
// then scaled to [0, 1] as ToTensor() would. Label -1 (OOD).
//
// Unlike pytorch-ood, whose samples depend on the order of __getitem__ calls (one
// shared numpy generator), sample i is drawn from its own stream seeded by (seed, i):
// the same index always gives the same image, with any number of loader threads.
#include <ATen/ATen.h>

#include "ood/generated_dataset.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "gaussian-noise";
  info.summary = "images of clipped Gaussian noise, label -1";
  info.doc =
      "pixel = trunc(clip(N(loc, scale^2), 0, 255)) / 255, as pytorch-ood's GaussianNoise\n"
      "followed by ToTensor(). `shape` is [C, H, W] (pytorch-ood's `size` is (H, W, C)).\n"
      "Sample i depends only on (seed, i), not on the order samples are read.";
  info.params = {
      ood::ParamSpec::integer("size", "number of samples").default_value(10000).min(1),
      ood::ParamSpec::list("shape", ood::ParamType::Int, "image shape [C, H, W]")
          .default_value(std::vector<std::int64_t>{3, 32, 32})
          .items(3, 3)
          .min(1),
      ood::ParamSpec::real("loc", "mean on the 0..255 scale").default_value(128.0),
      ood::ParamSpec::real("scale", "standard deviation on the 0..255 scale").default_value(128.0).min(0.0),
      ood::ParamSpec::integer("seed", "seed (default: derived from the pipeline's seed)").optional().min(0),
  };
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context& ctx) {
    const std::vector<std::int64_t> shape = p.get_int_list("shape");
    const double loc = p.get_float("loc"), scale = p.get_float("scale");
    return std::make_shared<ood::GeneratedDataset>(
        p.get_int("size"), shape, ood::component_seed(p, ctx, "gaussian-noise"), -1,
        [shape, loc, scale](at::Generator& gen) {
          return at::normal(loc, scale, shape, gen).clamp_(0, 255).trunc_().div_(255.0).to(at::kFloat);
        });
  });
}

}  // namespace

OOD_PLUGIN("gaussian-noise", "Gaussian noise images", register_components)
