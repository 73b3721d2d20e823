#pragma once
// Seeded random streams for components. Everything random in ood derives its stream
// from a seed and an index, never from call order, so results do not depend on how
// many loader threads run or in which order samples are requested.
#include <ATen/core/Generator.h>

#include <cstdint>
#include <string_view>

#include "ood/export.hpp"

namespace ood {

class Context;
class Params;

/// Mixes two 64-bit values into a well-distributed seed (SplitMix64 finaliser).
OOD_SDK_API std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b);
/// A CPU generator (the same engine as torch.Generator) seeded with `seed`.
OOD_SDK_API at::Generator make_generator(std::uint64_t seed);
/// Uniform in [0, 1).
OOD_SDK_API double uniform01(at::Generator& generator);
/// A component's seed: its "seed" parameter when the pipeline gives one, else the
/// pipeline's seed mixed with `stream` (a name such as the component's), so that two
/// components draw different numbers from the same pipeline seed.
OOD_SDK_API std::uint64_t component_seed(const Params& params, Context& context, std::string_view stream);
/// Uniform integer in [low, high).
OOD_SDK_API std::int64_t uniform_int(at::Generator& generator, std::int64_t low, std::int64_t high);

}  // namespace ood
