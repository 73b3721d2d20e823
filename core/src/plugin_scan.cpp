#include "ood/core/plugin_scan.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "ood/core/results.hpp"
#include "ood/error.hpp"

namespace ood::core {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int kCacheFormat = 1;

// ------------------------------------------------------------------ metadata as JSON

json param_to_json(const ParamSpec& p) {
  json j = {{"name", p.name()}, {"type", std::string(to_string(p.type()))}, {"doc", p.doc()}};
  if (p.type() == ParamType::List) j["items"] = std::string(to_string(p.item_type()));
  if (p.type() == ParamType::Component || (p.type() == ParamType::List && p.item_type() == ParamType::Component))
    j["kind"] = std::string(to_string(p.component_kind()));
  if (!p.choices().empty()) j["choices"] = p.choices();
  if (p.has_default()) j["default"] = p.default_json_text();
  if (p.is_optional()) j["optional"] = true;
  if (p.minimum()) j["min"] = {*p.minimum(), p.minimum_exclusive()};
  if (p.maximum()) j["max"] = {*p.maximum(), p.maximum_exclusive()};
  if (p.min_items() > 0 || p.max_items() != SIZE_MAX)
    j["item_count"] = {p.min_items(), p.max_items() == SIZE_MAX ? json(nullptr) : json(p.max_items())};
  return j;
}

ParamType param_type_from(const std::string& text) {
  for (ParamType t : {ParamType::Int, ParamType::Float, ParamType::Bool, ParamType::String, ParamType::Enum,
                      ParamType::List, ParamType::Path, ParamType::Component})
    if (to_string(t) == text) return t;
  throw Error("unknown parameter type '" + text + "'");
}

Kind kind_from(const json& j) {
  const auto k = kind_from_string(j.get<std::string>());
  if (!k) throw Error("unknown kind " + j.dump());
  return *k;
}

ParamSpec param_from_json(const json& j) {
  const std::string name = j.at("name").get<std::string>();
  const std::string doc = j.at("doc").get<std::string>();
  const ParamType type = param_type_from(j.at("type").get<std::string>());
  auto make = [&]() -> ParamSpec {
    switch (type) {
      case ParamType::Int: return ParamSpec::integer(name, doc);
      case ParamType::Float: return ParamSpec::real(name, doc);
      case ParamType::Bool: return ParamSpec::boolean(name, doc);
      case ParamType::String: return ParamSpec::string(name, doc);
      case ParamType::Enum: return ParamSpec::choice(name, j.at("choices").get<std::vector<std::string>>(), doc);
      case ParamType::Path: return ParamSpec::path(name, doc);
      case ParamType::Component: return ParamSpec::component(name, kind_from(j.at("kind")), doc);
      case ParamType::List: {
        const ParamType item = param_type_from(j.at("items").get<std::string>());
        if (item == ParamType::Component) return ParamSpec::component_list(name, kind_from(j.at("kind")), doc);
        return ParamSpec::list(name, item, doc);
      }
    }
    throw Error("unknown parameter type");
  };
  ParamSpec p = make();
  if (j.contains("default")) p.default_json(j["default"].get<std::string>());
  if (j.value("optional", false)) p.optional();
  if (j.contains("min")) p.min(j["min"][0].get<double>(), j["min"][1].get<bool>());
  if (j.contains("max")) p.max(j["max"][0].get<double>(), j["max"][1].get<bool>());
  if (j.contains("item_count"))
    p.items(j["item_count"][0].get<std::size_t>(),
            j["item_count"][1].is_null() ? SIZE_MAX : j["item_count"][1].get<std::size_t>());
  return p;
}

json component_to_json(const RegisteredComponent& c) {
  json params = json::array();
  for (const auto& p : c.info.params) params.push_back(param_to_json(p));
  return {{"kind", std::string(to_string(c.info.kind))},
          {"name", c.info.name},
          {"summary", c.info.summary},
          {"paper", c.info.paper},
          {"year", c.info.year},
          {"doc", c.info.doc},
          {"has_check", static_cast<bool>(c.info.check)},
          {"params", params}};
}

// ------------------------------------------------------------------ small helpers

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

void write_all(int fd, const std::string& text) {
  const char* data = text.data();
  std::size_t size = text.size();
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the host went away: nothing left to tell
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::string seconds_text(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

struct FileStamp {
  std::int64_t size = -1;
  std::int64_t mtime_ns = 0;
};

std::optional<FileStamp> stamp_of(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{static_cast<std::int64_t>(st.st_size),
                   static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* text = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string()) +
         (text ? std::string(", ") + text : std::string());
}

// What the cache is valid for: the scanner's verdicts depend on the host's ABI and on
// the scanner program itself.
std::string host_key(const fs::path& scanner) {
  std::string key = std::string(OOD_VERSION) + " abi=" + std::to_string(OOD_PLUGIN_ABI_VERSION) + " " +
                    OOD_TORCH_BUILD_STRING + " " + OOD_CXX_ABI_STRING;
  if (const auto s = stamp_of(scanner))
    key += " scanner=" + std::to_string(s->size) + ":" + std::to_string(s->mtime_ns);
  return key;
}

json read_cache(const fs::path& file, const std::string& host) {
  if (file.empty()) return json::object();
  std::ifstream in(file, std::ios::binary);
  if (!in) return json::object();
  try {
    json doc = json::parse(in);
    if (doc.is_object() && doc.value("format", 0) == kCacheFormat && doc.value("host", "") == host &&
        doc.contains("files") && doc["files"].is_object())
      return doc["files"];
  } catch (const std::exception& e) {
    spdlog::debug("plugin cache {} is unreadable ({}); rescanning", file.string(), e.what());
  }
  return json::object();
}

void write_cache(const fs::path& file, const std::string& host, const json& files) {
  if (file.empty()) return;
  try {
    const json doc = {{"format", kCacheFormat}, {"host", host}, {"files", files}};
    // Atomic: concurrent commands each write a whole file; the last one stays.
    write_file_atomically(file, doc.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
  } catch (const std::exception& e) {
    spdlog::debug("plugin cache not written: {}", e.what());
  }
}

// ------------------------------------------------------------------ the scanner child

struct ScanOutcome {
  std::map<std::string, json> results;  // file -> result line
};

// Runs one scanner over `files`; fills in results until all are done, the scanner
// dies or hangs. Returns the file it was working on when it stopped, with the reason.
std::optional<std::pair<std::string, std::string>> run_scanner_once(const fs::path& scanner,
                                                                   const std::vector<std::string>& files,
                                                                   std::chrono::milliseconds timeout,
                                                                   ScanOutcome& outcome) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("plugin scanner: cannot create a pipe: " + errno_text(errno));
  std::vector<std::string> args = {scanner.string(), "__scan-plugins", "--fd", "3"};
  args.insert(args.end(), files.begin(), files.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error("plugin scanner: cannot start a process: " + errno_text(errno));
  }
  if (pid == 0) {
    // Child: results go to fd 3; stdout to /dev/null, so that a plugin printing there
    // cannot corrupt them; stderr stays (a crashing plugin's last words).
    if (fds[1] == 3) ::fcntl(3, F_SETFD, 0);
    else ::dup2(fds[1], 3);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) ::dup2(null_fd, 1);
    ::execv(scanner.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);

  std::string buffer, current;
  bool started = false;
  std::optional<std::pair<std::string, std::string>> stopped;
  // Starting the scanner loads LibTorch: allow more than one file's time for it.
  auto deadline = std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds(30000));
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      if (!current.empty())
        stopped = {current, "timed out: no answer from the plugin scanner within " + seconds_text(timeout) +
                                " s (it hangs while loading; $OOD_PLUGIN_SCAN_TIMEOUT sets the limit)"};
      else
        stopped = {"", "the plugin scanner did not start in time"};
      break;
    }
    char chunk[65536];
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the scanner finished or died
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      const std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      json msg;
      try {
        msg = json::parse(line);
      } catch (const std::exception&) {
        continue;
      }
      if (msg.contains("begin")) {
        current = msg["begin"].get<std::string>();
        started = true;
        deadline = std::chrono::steady_clock::now() + timeout;
      } else if (msg.contains("file")) {
        outcome.results[msg["file"].get<std::string>()] = msg;
        current.clear();
      }
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (stopped) return stopped;
  if (!current.empty()) {
    if (WIFSIGNALED(status)) return std::make_pair(current, "it crashed the plugin scanner with " + signal_name(WTERMSIG(status)));
    return std::make_pair(current, "the plugin scanner exited with status " +
                                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                                       " while loading it");
  }
  if (!started && !files.empty()) {
    const std::string how = WIFSIGNALED(status) ? signal_name(WTERMSIG(status))
                                                : "exit status " + std::to_string(WEXITSTATUS(status));
    return std::make_pair(std::string(), "the plugin scanner " + scanner.string() + " failed to start (" + how + ")");
  }
  return std::nullopt;
}

}  // namespace

fs::path default_plugin_cache_file() {
  if (const char* home = std::getenv("OOD_HOME"); home && *home) return fs::path(home) / "plugin-registry.json";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "ood" / "plugin-registry.json";
  return {};
}

std::chrono::milliseconds default_plugin_scan_timeout() {
  if (const char* text = std::getenv("OOD_PLUGIN_SCAN_TIMEOUT"); text && *text) {
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (end && *end == 0 && seconds > 0 && seconds < 1e6)
      return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
    spdlog::warn("OOD_PLUGIN_SCAN_TIMEOUT='{}' is not a number of seconds > 0; using 10", text);
  }
  return std::chrono::milliseconds(10000);
}

int run_plugin_scanner(const std::vector<std::string>& files, int fd) {
  spdlog::set_level(spdlog::level::off);  // refusals travel in the results
  for (const std::string& file : files) {
    write_all(fd, json{{"begin", file}}.dump() + "\n");
    Registry registry;
    PluginLoadReport report;
    load_plugin_file(file, registry, report);
    json result = {{"file", file}};
    if (!report.refused.empty()) {
      result["status"] = "refused";
      result["reason"] = report.refused.front().reason;
    } else {
      const auto components = registry.list();
      const std::shared_ptr<const PluginRecord> record =
          components.empty() ? nullptr : components.front()->record;
      result["status"] = "ok";
      const auto& loaded = report.loaded.front();
      result["plugin"] = {{"name", loaded.name},
                          {"version", loaded.version},
                          {"summary", loaded.summary},
                          {"license", loaded.license},
                          {"torch_build", record ? record->torch_build : std::string(OOD_TORCH_BUILD_STRING)}};
      try {
        PluginRecord hashing;
        hashing.file = file;
        result["sha256"] = hashing.sha256();
      } catch (const std::exception&) {
        result["sha256"] = "";  // provenance then says so; the plugin itself is fine
      }
      json list = json::array();
      for (const auto* c : components) list.push_back(component_to_json(*c));
      result["components"] = list;
    }
    write_all(fd, result.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
  }
  return 0;
}

PluginLoadReport scan_plugins(const std::vector<fs::path>& files, Registry& registry,
                              const PluginScanOptions& options) {
  const std::string host = host_key(options.scanner);
  json cache = read_cache(options.cache_file, host);
  bool cache_changed = false;

  // Which files the cache answers, and which must be scanned.
  std::map<std::string, FileStamp> stamps;
  std::vector<std::string> to_scan;
  for (const fs::path& file : files) {
    const auto s = stamp_of(file);
    if (!s) continue;  // vanished since it was found; nothing to load
    stamps[file.string()] = *s;
    const auto it = cache.find(file.string());
    if (it != cache.end() && it->value("size", std::int64_t(-2)) == s->size &&
        it->value("mtime_ns", std::int64_t(-2)) == s->mtime_ns)
      continue;
    to_scan.push_back(file.string());
  }

  // Verdicts of this command only (timeouts, a scanner that does not work): reported
  // like the others, never cached.
  json transient_verdicts = json::object();

  // Scan, restarting the scanner after each file that killed or hung it.
  if (!to_scan.empty()) {
    spdlog::debug("scanning {} plugin file(s) in a child process", to_scan.size());
    std::vector<std::string> remaining = to_scan;
    ScanOutcome outcome;
    while (!remaining.empty()) {
      std::optional<std::pair<std::string, std::string>> stopped;
      const std::size_t results_before = outcome.results.size();
      try {
        stopped = run_scanner_once(options.scanner, remaining, options.timeout, outcome);
      } catch (const std::exception& e) {
        stopped = std::make_pair(std::string(), std::string(e.what()));
      }
      std::vector<std::string> next;
      for (const auto& f : remaining) {
        if (outcome.results.count(f)) continue;
        if (stopped && f == stopped->first) {
          outcome.results[f] = {{"file", f}, {"status", "refused"},
                                {"reason", "plugin '" + f + "': refused: " + stopped->second}};
          // A timeout may be the machine's load, not the plugin's: refused now, scanned
          // again next time (a crash is the file's own and stays cached).
          if (stopped->second.rfind("timed out", 0) == 0) outcome.results[f]["transient"] = true;
          continue;
        }
        next.push_back(f);
      }
      // Never loop: a scanner that ended without answering for any file (and without
      // naming one) does not work.
      if (!stopped && outcome.results.size() == results_before)
        stopped = std::make_pair(std::string(), std::string("the plugin scanner ended without answering"));
      if (stopped && stopped->first.empty()) {
        // The scanner itself does not work: nothing can be scanned (not cached).
        for (const auto& f : next)
          outcome.results[f] = {{"file", f}, {"status", "refused"},
                                {"reason", "plugin '" + f + "': not scanned: " + stopped->second}, {"transient", true}};
        next.clear();
      }
      remaining = std::move(next);
    }
    for (const auto& f : to_scan) {
      json entry = outcome.results[f];
      const bool transient = entry.value("transient", false);
      entry.erase("file");
      entry.erase("transient");
      entry["size"] = stamps[f].size;
      entry["mtime_ns"] = stamps[f].mtime_ns;
      if (transient) {
        transient_verdicts[f] = entry;
        if (cache.erase(f) > 0) cache_changed = true;
        continue;
      }
      cache[f] = entry;
      cache_changed = true;
    }
    // Forget files that no longer exist, so the cache does not grow forever.
    for (auto it = cache.begin(); it != cache.end();) {
      std::error_code ec;
      if (!fs::exists(it.key(), ec)) {
        it = cache.erase(it);
        cache_changed = true;
      } else {
        ++it;
      }
    }
    if (cache_changed) write_cache(options.cache_file, host, cache);
  }

  // Register the metadata in search order.
  PluginLoadReport report;
  for (const fs::path& file : files) {
    const json* found = nullptr;
    for (const json* verdicts : {&cache, &transient_verdicts})
      if (!found && verdicts->contains(file.string())) found = &verdicts->at(file.string());
    if (!found) continue;
    const json& entry = *found;
    if (entry.value("status", "") != "ok") {
      const std::string reason = entry.value("reason", "plugin '" + file.string() + "': refused");
      report.refused.push_back({file, reason});
      spdlog::warn("{}", reason);
      continue;
    }
    try {
      auto record = std::make_shared<PluginRecord>();
      const json& plugin = entry.at("plugin");
      record->name = plugin.at("name").get<std::string>();
      record->version = plugin.at("version").get<std::string>();
      record->summary = plugin.at("summary").get<std::string>();
      record->license = plugin.at("license").get<std::string>();
      record->torch_build = plugin.at("torch_build").get<std::string>();
      record->file = file;
      record->sha256_hex = entry.value("sha256", "");
      registry.begin_plugin(record);
      try {
        for (const json& c : entry.at("components")) {
          ComponentInfo info;
          info.kind = kind_from(c.at("kind"));
          info.name = c.at("name").get<std::string>();
          info.summary = c.at("summary").get<std::string>();
          info.paper = c.at("paper").get<std::string>();
          info.year = c.at("year").get<int>();
          info.doc = c.at("doc").get<std::string>();
          for (const json& p : c.at("params")) info.params.push_back(param_from_json(p));
          registry.add_scanned(std::move(info), c.value("has_check", false));
        }
      } catch (...) {
        registry.rollback_plugin();
        throw;
      }
      const std::size_t count = entry.at("components").size();
      registry.commit_plugin();
      report.loaded.push_back({file, record->name, record->version, record->summary, count, record->license});
    } catch (const std::exception& e) {
      const std::string reason = "plugin '" + file.string() + "': refused: " + e.what();
      report.refused.push_back({file, reason});
      spdlog::warn("{}", reason);
    }
  }
  registry.set_lazy_loader([](const fs::path& file, Registry& into) {
    PluginLoadReport r;
    load_plugin_file(file, into, r);
    if (!r.refused.empty()) throw Error(r.refused.front().reason);
  });
  return report;
}

}  // namespace ood::core
