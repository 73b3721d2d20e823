#pragma once
// Running the built `ood` binary from tests.
#include <cstdlib>
#include <string>

#include "test_support.hpp"

namespace ood::test {

inline std::string ood_binary() {
  const char* b = std::getenv("OOD_BINARY");
  if (!b) throw std::runtime_error("OOD_BINARY is not set (run through meson test)");
  return b;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Runs `ood ARGS` in `dir` with one thread and no progress output.
inline CommandResult ood(const std::string& args, const std::filesystem::path& dir = std::filesystem::current_path()) {
  return run_command("cd '" + dir.string() + "' && '" + ood_binary() + "' " + args);
}

}  // namespace ood::test
