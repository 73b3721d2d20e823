#include "ood/core/results.hpp"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <fstream>
#include <random>
#include <sstream>

#include "ood/error.hpp"

namespace ood::core {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

// One write(2) loop; returns 0 or the errno of the failure.
int write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

// --- What a signal handler needs to remove the staging folder. Plain globals written
// before the handler is installed: the handler may only make system calls.
int g_parent_fd = -1;                  // the output's parent folder
char g_staging_name[512] = {0};        // the staging folder's name in it
volatile std::sig_atomic_t g_armed = 0;
// While a commit runs, a signal (in any thread) only takes note; the commit finishes
// and then the process ends by that signal.
volatile std::sig_atomic_t g_committing = 0;
volatile std::sig_atomic_t g_pending_signal = 0;
struct sigaction g_previous_int {}, g_previous_term {};

struct LinuxDirent64 {
  std::uint64_t d_ino;
  std::int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Async-signal-safe: removes the files in the staging folder (it holds plain files
// only until commit, when signals are blocked) and the folder itself.
void remove_staging_from_handler() {
  const int fd = ::openat(g_parent_fd, g_staging_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    alignas(8) char buf[4096];
    for (int round = 0; round < 64; ++round) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long pos = 0; pos < n;) {
        auto* d = reinterpret_cast<LinuxDirent64*>(buf + pos);
        if (!(d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0))))
          ::unlinkat(fd, d->d_name, 0);
        pos += d->d_reclen;
      }
      ::lseek(fd, 0, SEEK_SET);
    }
    ::close(fd);
  }
  ::unlinkat(g_parent_fd, g_staging_name, AT_REMOVEDIR);
}

void on_signal(int sig) {
  if (g_committing) {
    g_pending_signal = sig;
    return;
  }
  if (g_armed) {
    g_armed = 0;
    remove_staging_from_handler();
    static const char msg[] = "\nood: interrupted; the output folder was left as it was\n";
    [[maybe_unused]] auto ignored = ::write(2, msg, sizeof msg - 1);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Removes a folder tree, reporting nothing (cleanup on the way out).
void remove_tree_quietly(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace

void write_file_atomically(const fs::path& file, const std::string& content) {
  std::error_code ec;
  if (file.has_parent_path()) {
    fs::create_directories(file.parent_path(), ec);
    if (ec) throw FileError(file.parent_path().string() + ": cannot create directory: " + ec.message());
  }
  const fs::path tmp = file.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw FileError(file.string() + ": cannot write (cannot create " + tmp.string() + "): " + errno_text(errno));
  int error = write_all(fd, content.data(), content.size());
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());
    throw FileError(file.string() + ": write failed: " + errno_text(error));
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    error = errno;
    ::unlink(tmp.c_str());
    throw FileError(file.string() + ": cannot move the finished file into place: " + errno_text(error));
  }
}

ResultStaging::ResultStaging(const fs::path& out) : out_(out) {
  const std::string name = out.string();
  if (name.empty()) throw InvalidArgument("--out: the output folder name is empty");
  if (name.find('\0') != std::string::npos) throw InvalidArgument("--out: the folder name contains a NUL character");
  std::error_code ec;
  const fs::path absolute = fs::weakly_canonical(fs::absolute(out, ec), ec);
  if (ec) throw FileError(name + ": cannot resolve the output folder: " + ec.message());
  // The whole folder is replaced by the new result set: never the working directory,
  // one of its ancestors, or the root.
  const fs::path cwd = fs::weakly_canonical(fs::current_path(ec), ec);
  if (!absolute.has_relative_path() || absolute == cwd ||
      std::mismatch(absolute.begin(), absolute.end(), cwd.begin(), cwd.end()).first == absolute.end())
    throw InvalidArgument("--out " + name + ": the output folder is replaced by each run's results; it cannot be "
                          "the working directory or one of its parents (choose a folder of its own)");
  out_ = absolute;
  const auto status = fs::symlink_status(out_, ec);
  if (fs::exists(status) && !fs::is_directory(status))
    throw FileError(name + ": the output folder is a " +
                    std::string(fs::is_symlink(status) ? "symbolic link" : "file") + ", not a folder");
  if (fs::exists(status) && ::access(out_.c_str(), W_OK | X_OK) != 0)
    throw FileError(name + ": the output folder is not writable: " + errno_text(errno));
  // A new output folder appears only with the results (a failed run leaves none); its
  // parent is created now.
  const fs::path parent = out_.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw FileError(name + ": cannot create the output folder's parent " + parent.string() + ": " + ec.message());

  std::random_device seed;
  const std::string base = "." + out_.filename().string() + ".staging-" + std::to_string(::getpid()) + "-";
  for (int attempt = 0;; ++attempt) {
    staging_ = parent / (base + std::to_string(seed() % 1000000u));
    if (::mkdir(staging_.c_str(), 0777) == 0) break;
    if (errno != EEXIST || attempt > 100)
      throw FileError(name + ": cannot create the staging folder " + staging_.string() +
                      " next to it (its parent must be writable): " + errno_text(errno));
  }
  // Arm the signal handler: an interrupted run leaves no staging folder behind.
  const std::string staging_name = staging_.filename().string();
  const int parent_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent_fd >= 0 && staging_name.size() < sizeof g_staging_name && g_armed == 0) {
    if (g_parent_fd >= 0) ::close(g_parent_fd);
    g_parent_fd = parent_fd;
    std::memcpy(g_staging_name, staging_name.c_str(), staging_name.size() + 1);
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &g_previous_int);
    ::sigaction(SIGTERM, &action, &g_previous_term);
    g_armed = 1;
  } else if (parent_fd >= 0) {
    ::close(parent_fd);
  }
}

ResultStaging::~ResultStaging() {
  if (g_armed && g_staging_name == staging_.filename().string()) {
    g_armed = 0;
    ::sigaction(SIGINT, &g_previous_int, nullptr);
    ::sigaction(SIGTERM, &g_previous_term, nullptr);
  }
  if (!committed_) remove_tree_quietly(staging_);
}

void ResultStaging::commit() {
  if (committed_) return;
  // No signal between the first move and the removal of the old set.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &block, &previous);
  g_committing = 1;
  struct Restore {
    sigset_t* set;
    ~Restore() {
      g_committing = 0;
      ::pthread_sigmask(SIG_SETMASK, set, nullptr);
      if (const int sig = g_pending_signal) {
        // The set is whole (old or new); now stop as the signal asked.
        ::signal(sig, SIG_DFL);
        ::raise(sig);
      }
    }
  } restore{&previous};

  const std::string name = out_.string();
  const int parent_fd = ::open(out_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent_fd < 0) throw FileError(name + ": cannot open its parent folder: " + errno_text(errno));
  struct Close {
    int fd;
    ~Close() { ::close(fd); }  // also releases the lock
  } close_parent{parent_fd};
  // Two runs finishing into one parent at once take turns; each swaps a whole set.
  while (::flock(parent_fd, LOCK_EX) != 0)
    if (errno != EINTR) throw FileError(name + ": cannot lock its parent folder: " + errno_text(errno));

  // Whatever else the output folder holds (files a run wrote there itself, such as
  // detector states, or older files) stays: it moves into the new set, unless the
  // new set has a file of that name.
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(out_, ec))) {
    // No old set: the staging folder simply becomes the output folder.
    if (::rename(staging_.c_str(), out_.c_str()) == 0) {
      committed_ = true;
      return;
    }
    if (errno != EEXIST && errno != ENOTEMPTY)
      throw FileError(name + ": cannot move the results into place: " + errno_text(errno));
  }
  for (fs::directory_iterator it(out_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path target = staging_ / it->path().filename();
    if (fs::exists(fs::symlink_status(target))) continue;
    // The old set's own files go with it: never an old metrics.json beside new scores.
    const std::string file = it->path().filename().string();
    if (file == "metrics.json" || file == "metrics.md" || file == "scores.csv" || file == "model.pt") continue;
    if (::rename(it->path().c_str(), target.c_str()) != 0)
      throw FileError(it->path().string() + ": cannot move it into the new result set: " + errno_text(errno));
  }
  if (ec) throw FileError(name + ": cannot list the output folder: " + ec.message());

  if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, out_.c_str(), RENAME_EXCHANGE) != 0) {
    const int error = errno;
    if (error != EINVAL && error != ENOSYS && error != ENOTSUP)
      throw FileError(name + ": cannot swap the new results into place: " + errno_text(error));
    // A file system without RENAME_EXCHANGE: two renames, with a moment in which the
    // folder is absent (never mixed).
    const fs::path old = staging_.string() + "-old";
    if (::rename(out_.c_str(), old.c_str()) != 0)
      throw FileError(name + ": cannot move the old results away: " + errno_text(errno));
    if (::rename(staging_.c_str(), out_.c_str()) != 0) {
      const int e = errno;
      ::rename(old.c_str(), out_.c_str());
      throw FileError(name + ": cannot move the new results into place: " + errno_text(e));
    }
    committed_ = true;
    remove_tree_quietly(old);
    return;
  }
  committed_ = true;
  remove_tree_quietly(staging_);  // now the old set
}

json metrics_json(const EvaluationResult& result, const json& meta) {
  json doc = json::object();
  for (std::size_t o = 0; o < result.out.size(); ++o) {
    json set = json::object();
    for (std::size_t d = 0; d < result.detectors.size(); ++d) {
      // A failed detector is marked with its reason; the others keep their numbers.
      if (d < result.failures.size() && !result.failures[d].empty()) {
        set[result.detectors[d]] = json{{"failed", true}, {"error", result.failures[d]}};
        continue;
      }
      const OODMetricValues& m = result.metrics[o][d];
      set[result.detectors[d]] = json{{"AUROC", m.auroc},
                                      {"AUPR-IN", m.aupr_in},
                                      {"AUPR-OUT", m.aupr_out},
                                      {"FPR95TPR", m.fpr95tpr}};
    }
    doc[result.out[o].name] = set;
  }
  doc["_meta"] = meta;
  return doc;
}

namespace {
std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 100.0 * fraction);
  return buf;
}
}  // namespace

std::string metrics_markdown(const EvaluationResult& result) {
  std::ostringstream out;
  out << "| Detector | OOD set | AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |\n";
  out << "|---|---|---:|---:|---:|---:|\n";
  for (std::size_t d = 0; d < result.detectors.size(); ++d) {
    if (d < result.failures.size() && !result.failures[d].empty()) {
      out << "| " << result.detectors[d] << " | *failed* | - | - | - | - |\n";
      continue;
    }
    OODMetricValues sum{0, 0, 0, 0};
    for (std::size_t o = 0; o < result.out.size(); ++o) {
      const OODMetricValues& m = result.metrics[o][d];
      out << "| " << result.detectors[d] << " | " << result.out[o].name << " | " << percent(m.auroc)
          << " | " << percent(m.aupr_in) << " | " << percent(m.aupr_out) << " | "
          << percent(m.fpr95tpr) << " |\n";
      sum.auroc += m.auroc;
      sum.aupr_in += m.aupr_in;
      sum.aupr_out += m.aupr_out;
      sum.fpr95tpr += m.fpr95tpr;
    }
    if (result.out.size() > 1) {
      const double n = static_cast<double>(result.out.size());
      out << "| " << result.detectors[d] << " | *mean* | " << percent(sum.auroc / n) << " | "
          << percent(sum.aupr_in / n) << " | " << percent(sum.aupr_out / n) << " | "
          << percent(sum.fpr95tpr / n) << " |\n";
    }
  }
  return out.str();
}

std::string scores_csv(const EvaluationResult& result) {
  std::ostringstream out;
  out << "dataset,index,label";
  for (const auto& d : result.detectors) out << "," << d;
  out << "\n";
  auto write_set = [&](const SetScores& set) {
    const std::int64_t n = set.labels.size(0);
    const auto labels = set.labels.contiguous();
    const auto indices = set.indices.contiguous();
    std::vector<at::Tensor> scores;
    std::vector<int> digits;
    for (const auto& s : set.scores) {
      // A failed detector's column stays, empty.
      digits.push_back(s.defined() && s.scalar_type() == at::kDouble ? 17 : 9);
      scores.push_back(s.defined() ? s.to(at::kDouble).contiguous() : at::Tensor());
    }
    char buf[40];
    for (std::int64_t i = 0; i < n; ++i) {
      out << set.name << "," << indices.data_ptr<std::int64_t>()[i] << ","
          << labels.data_ptr<std::int64_t>()[i];
      for (std::size_t d = 0; d < scores.size(); ++d) {
        if (!scores[d].defined()) {
          out << ",";
          continue;
        }
        std::snprintf(buf, sizeof buf, "%.*g", digits[d], scores[d].data_ptr<double>()[i]);
        out << "," << buf;
      }
      out << "\n";
    }
  };
  write_set(result.in);
  for (const auto& o : result.out) write_set(o);
  return out.str();
}

}  // namespace ood::core
