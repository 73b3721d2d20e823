#include "ood/random.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include "ood/context.hpp"
#include "ood/error.hpp"
#include "ood/params.hpp"

namespace ood {

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

at::Generator make_generator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

std::uint64_t component_seed(const Params& params, Context& context, std::string_view stream) {
  if (params.has("seed")) return static_cast<std::uint64_t>(params.get_int("seed"));
  // FNV-1a: a hash that is the same with every compiler and standard library.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : stream) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return mix_seed(context.seed(), h);
}

namespace {
std::uint64_t next64(at::Generator& generator) {
  auto* impl = at::check_generator<at::CPUGeneratorImpl>(generator);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return impl->random64();
}
}  // namespace

double uniform01(at::Generator& generator) {
  // 53 random bits -> a double in [0, 1).
  return static_cast<double>(next64(generator) >> 11) * 0x1.0p-53;
}

std::int64_t uniform_int(at::Generator& generator, std::int64_t low, std::int64_t high) {
  if (high <= low) throw InvalidArgument("uniform_int: empty range");
  const auto span = static_cast<std::uint64_t>(high - low);
  // Rejection sampling keeps the distribution exactly uniform.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  std::uint64_t x;
  do {
    x = next64(generator);
  } while (x >= limit);
  return low + static_cast<std::int64_t>(x % span);
}

}  // namespace ood
