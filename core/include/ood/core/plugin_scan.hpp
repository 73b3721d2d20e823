#pragma once
// Isolated plugin scanning with a metadata cache, like GStreamer's registry.
//
// Loading a plugin runs its code (static initialisers, registration): a plugin that
// crashes or hangs there would take every `ood` command with it. So the host never
// loads a plugin just to learn what it provides. A child process (the `ood` binary
// itself, hidden subcommand `__scan-plugins`) loads each new or changed file and
// reports its PluginInfo, components and schemas, and the file's SHA-256; the host
// caches that in $OOD_HOME/plugin-registry.json keyed by path, size and modification
// time. A file that kills the scanner (signal) or keeps it busy past the timeout is
// refused with the signal or the timeout named; the scanner is restarted for the
// remaining files. The registry is then filled from the metadata, and a library is
// loaded into the host only when a command uses one of its components
// (Registry::use()).
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "ood/core/plugin_loader.hpp"
#include "ood/core/registry.hpp"

namespace ood::core {

struct PluginScanOptions {
  /// The program that runs `__scan-plugins --fd N FILE...` (the ood binary).
  std::filesystem::path scanner;
  /// The cache file; empty: no cache (every file is scanned).
  std::filesystem::path cache_file;
  /// How long one file may take in the scanner before it is killed.
  std::chrono::milliseconds timeout{10000};
};

/// $OOD_HOME/plugin-registry.json (default ~/.cache/ood/plugin-registry.json); empty
/// when neither $OOD_HOME nor $HOME is set.
std::filesystem::path default_plugin_cache_file();

/// The per-file timeout: $OOD_PLUGIN_SCAN_TIMEOUT (seconds, > 0) or 10 s.
std::chrono::milliseconds default_plugin_scan_timeout();

/// Scans `files` (from find_plugin_files) through the cache and the scanner, and
/// registers their components as metadata in `registry`, with a lazy loader that loads
/// a library on first use. Refusals (including crashes and timeouts) are reported
/// and logged as warnings; never throws for a bad plugin.
PluginLoadReport scan_plugins(const std::vector<std::filesystem::path>& files, Registry& registry,
                              const PluginScanOptions& options);

/// The scanner's side: loads each file in this process and writes one JSON line per
/// file to `fd` ({"begin": FILE} before loading, then the result). Returns 0.
int run_plugin_scanner(const std::vector<std::string>& files, int fd);

}  // namespace ood::core
