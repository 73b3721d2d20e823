// Images of uniform noise, like pytorch-ood's UniformNoise: pixel values uniform in
// [0, 255), floored to integers (so 0..254, as in pytorch-ood), then scaled to [0, 1]
// as ToTensor() would. Label -1 (OOD).
//
// Sample i is drawn from its own stream seeded by (seed, i), so it does not depend on
// the order of reads (pytorch-ood's does).
#include <ATen/ATen.h>

#include "ood/generated_dataset.hpp"
#include "ood/plugin.hpp"
#include "ood/random.hpp"

namespace {

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "uniform-noise";
  info.summary = "images of uniform noise, label -1";
  info.doc =
      "pixel = floor(U[0, 255)) / 255, as pytorch-ood's UniformNoise followed by ToTensor().\n"
      "`shape` is [C, H, W] (pytorch-ood's `size` is (H, W, C)).\n"
      "Sample i depends only on (seed, i), not on the order samples are read.";
  info.params = {
      ood::ParamSpec::integer("size", "number of samples").default_value(10000).min(1),
      ood::ParamSpec::list("shape", ood::ParamType::Int, "image shape [C, H, W]")
          .default_value(std::vector<std::int64_t>{3, 32, 32})
          .items(3, 3)
          .min(1),
      ood::ParamSpec::integer("seed", "seed (default: derived from the pipeline's seed)").optional().min(0),
  };
  registrar.add_dataset(info, [](const ood::Params& p, ood::Context& ctx) {
    const std::vector<std::int64_t> shape = p.get_int_list("shape");
    return std::make_shared<ood::GeneratedDataset>(
        p.get_int("size"), shape, ood::component_seed(p, ctx, "uniform-noise"), -1, [shape](at::Generator& gen) {
          return at::rand(shape, gen, at::kDouble).mul_(255.0).floor_().div_(255.0).to(at::kFloat);
        });
  });
}

}  // namespace

OOD_PLUGIN("uniform-noise", "Uniform noise images", register_components)
