#pragma once
// Progress of a long loop: a bar redrawn in place on a terminal, plain log lines
// (every 10 %) when stderr is a file or a pipe, nothing when disabled.
#include <chrono>
#include <cstdint>
#include <string>

namespace ood::core {

class Progress {
 public:
  /// Globally enables or disables progress output (the host's --quiet).
  static void set_enabled(bool enabled);

  Progress(std::string label, std::int64_t total);
  ~Progress();
  void advance(std::int64_t steps = 1, const std::string& status = "");
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  int last_logged_decile_ = -1;
  bool terminal_;
  bool finished_ = false;
  std::string status_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace ood::core
