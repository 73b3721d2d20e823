// libFuzzer target 'image' (tools/dev.sh fuzz); see fuzz_entries.hpp.
#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ood::fuzz::image(data, size);
}
