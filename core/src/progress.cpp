#include "ood/core/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace ood::core {

namespace {
std::atomic<bool> g_enabled{true};
}

void Progress::set_enabled(bool enabled) { g_enabled = enabled; }

Progress::Progress(std::string label, std::int64_t total)
    : label_(std::move(label)),
      total_(total),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && terminal_ && g_enabled && done_ > 0) std::fputs("\n", stderr);
}

void Progress::advance(std::int64_t steps, const std::string& status) {
  done_ += steps;
  if (!status.empty()) status_ = status;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!g_enabled || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  if (terminal_) {
    // Redraw at most ~10 times a second.
    if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%-24s [%s] %3d%% %lld/%lld %.1fs %s", label_.c_str(), bar.c_str(),
                 static_cast<int>(fraction * 100), static_cast<long long>(done_),
                 static_cast<long long>(total_), elapsed, status_.c_str());
    if (final) std::fputs("\n", stderr);
    std::fflush(stderr);
    return;
  }
  const int decile = static_cast<int>(fraction * 10);
  if (decile == last_logged_decile_ && !final) return;
  if (final && last_logged_decile_ == 10) return;
  last_logged_decile_ = decile;
  spdlog::info("{}: {}/{} ({}%) {:.1f}s {}", label_, done_, total_, static_cast<int>(fraction * 100),
               elapsed, status_);
}

}  // namespace ood::core
