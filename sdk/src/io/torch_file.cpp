// The public entry points: pick the container format, shape the result, and write
// files atomically. The formats themselves live in zip_format.cpp,
// legacy_format.cpp, pickle_reader.cpp and pickle_writer.cpp.
//
// Python compatibility of save_tensor_dict was checked by hand with PyTorch 1.13.1
// (Debian): a file holding float32/float64/float16/bfloat16/int64/int32/int16/int8/
// uint8/bool tensors, a transposed and a sliced view, a 0-d and an empty tensor,
// loads with both `torch.load(f)` and `torch.load(f, weights_only=True)` as a plain
// dict with the same keys in the same order, dtypes, shapes and values, and
// `nn.Module.load_state_dict` accepts it. (LibTorch's torch::pickle_save output
// fails the weights_only check, hence the own pickler.)
#include "ood/io/torch_file.hpp"

#include <ATen/core/Dict.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "container_formats.hpp"
#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "pickle_reader.hpp"
#include "pickle_writer.hpp"
#include "storage_types.hpp"

namespace ood::io {
namespace {

using detail::fail;

// Enough to recognise a zip archive, the legacy magic-number pickle and a tar header.
constexpr std::size_t kHeadSize = 512;

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

std::string read_bytes(std::ifstream& in, const std::string& name, std::size_t max) {
  std::string bytes(max, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(max));
  if (in.bad()) fail(name, "cannot read file");
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

// A file created next to the target, so that the final rename stays on one file
// system and replaces the target atomically. Removed unless committed.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& target) : target_(target.string()) {
    static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::random_device seed;
    std::mt19937 random(seed());
    std::uniform_int_distribution<std::size_t> pick(0, sizeof kChars - 2);
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string suffix;
      for (int i = 0; i < 8; ++i) suffix += kChars[pick(random)];
      path_ = target_ + ".tmp-" + suffix;
      // 0666 and the umask give the file the permissions a plain open would.
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      if (errno != EEXIST) break;
    }
    fail(target_, "cannot create temporary file " + path_ + ": " + errno_text(errno));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }

  // Never reports a short write to its caller (the zip writer cannot recover from
  // one); the first error is kept for commit().
  std::size_t write(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    std::size_t left = size;
    while (left > 0 && error_ == 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno != EINTR) error_ = errno;
        continue;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    return size;
  }

  void commit() {
    if (error_ == 0 && ::fsync(fd_) != 0) error_ = errno;
    if (::close(fd_) != 0 && error_ == 0) error_ = errno;
    fd_ = -1;
    if (error_ != 0) fail(target_, "cannot write " + path_ + ": " + errno_text(error_));
    std::error_code ec;
    std::filesystem::rename(path_, target_, ec);
    if (ec) fail(target_, "cannot rename " + path_ + " to it: " + ec.message());
    committed_ = true;
  }

 private:
  std::string target_;
  std::string path_;
  int fd_ = -1;
  int error_ = 0;
  bool committed_ = false;
};

// The bytes save_tensor_dict writes for `tensor`: dense, on the CPU, row-major and
// no larger than the tensor itself (a slice would otherwise drag its whole base
// storage into the file).
at::Tensor compact(const std::string& name, const std::string& key, const at::Tensor& tensor) {
  const std::string what = "cannot save tensor '" + key + "': ";
  if (!tensor.defined()) fail(name, what + "it is undefined");
  if (tensor.layout() != at::kStrided) fail(name, what + "only dense tensors can be saved");
  if (!detail::storage_type_name(tensor.scalar_type())) {
    fail(name, what + "dtype " + std::string(c10::toString(tensor.scalar_type())) + " is not supported");
  }
  at::Tensor t = tensor.detach().cpu().resolve_conj().resolve_neg().contiguous();
  if (t.storage_offset() != 0 || t.storage().nbytes() != t.nbytes()) t = t.clone();
  return t;
}

}  // namespace

c10::IValue load_torch_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (!std::filesystem::exists(status)) fail(name, "no such file");
  if (std::filesystem::is_directory(status)) fail(name, "is a directory, not a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(name, "cannot open file: " + errno_text(errno));

  const std::string head = read_bytes(in, name, kHeadSize);
  if (head.empty()) fail(name, "empty file (not a PyTorch file)");
  if (head.rfind("PK\x03\x04", 0) == 0) {
    in.close();
    return detail::load_zip_file(name);
  }
  if (!detail::looks_like_legacy_file(head)) {
    if (head.size() >= 262 && head.compare(257, 5, "ustar") == 0) {
      fail(name, "tar archives of PyTorch < 0.4 are not supported");
    }
    fail(name, "not a PyTorch file (neither a zip archive nor a legacy pickle)");
  }
  in.clear();  // a file shorter than the head left eof and fail set
  in.seekg(0);
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) fail(name, "cannot read file: " + ec.message());
  const std::string bytes = read_bytes(in, name, static_cast<std::size_t>(size));
  return detail::load_legacy_file(name, bytes);
}

TensorDict load_state_dict(const std::filesystem::path& file) {
  const std::string name = file.string();
  const c10::IValue content = load_torch_file(file);
  if (!content.isGenericDict()) fail(name, "not a state dict: the file holds a " + content.tagKind() + ", not a dict");
  auto dict = content.toGenericDict();
  if (auto nested = dict.find(std::string("state_dict")); nested != dict.end() && nested->value().isGenericDict()) {
    dict = nested->value().toGenericDict();
  }
  TensorDict tensors;
  for (const auto& entry : dict) {
    if (!entry.key().isString()) fail(name, "not a state dict: it has a key of type " + entry.key().tagKind());
    if (entry.value().isTensor()) tensors.set(entry.key().toStringRef(), entry.value().toTensor());
  }
  if (tensors.empty() && !dict.empty()) {
    fail(name, "not a state dict: none of its " + std::to_string(dict.size()) + " entries is a tensor");
  }
  return tensors;
}

void load_state_dict_strict(const TensorDict& own, const TensorDict& given, const std::string& model) {
  std::vector<std::string> missing, unexpected, wrong_shape;
  for (const auto& [name, tensor] : own) {
    if (!given.contains(name)) {
      // Checkpoints from before PyTorch 0.4.1 have no num_batches_tracked.
      if (name.size() < 20 || name.compare(name.size() - 19, 19, "num_batches_tracked") != 0)
        missing.push_back(name);
    } else if (!given.at(name).sizes().equals(tensor.sizes())) {
      wrong_shape.push_back(name + " (file " + describe_tensor(given.at(name)) + ", model " + describe_tensor(tensor) +
                            ")");
    }
  }
  for (const auto& [name, tensor] : given)
    if (!own.contains(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty()) {
    std::ostringstream msg;
    msg << "state dict does not fit " << model;
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg << "; " << names.size() << " " << what << ": ";
      for (std::size_t i = 0; i < names.size() && i < 4; ++i) msg << (i ? ", " : "") << names[i];
      if (names.size() > 4) msg << ", ...";
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("with another shape", wrong_shape);
    throw InvalidArgument(msg.str());
  }
  at::NoGradGuard no_grad;
  for (const auto& [name, tensor] : own)
    if (given.contains(name)) const_cast<at::Tensor&>(tensor).copy_(given.at(name));
}

void save_tensor_dict(const std::filesystem::path& file, const TensorDict& tensors) {
  const std::string name = file.string();
  std::vector<std::pair<std::string, at::Tensor>> entries;
  std::vector<at::Tensor> storages;
  for (const auto& [key, tensor] : tensors) {
    entries.emplace_back(key, compact(name, key, tensor));
    storages.push_back(entries.back().second);
  }
  const std::string pickle = detail::pickle_tensor_dict(entries);

  TempFile temp(file);
  try {
    detail::write_zip([&](const void* data, std::size_t size) { return temp.write(data, size); }, pickle, storages);
  } catch (const c10::Error& e) {
    fail(name, std::string("cannot write zip archive: ") + e.what_without_backtrace());
  }
  temp.commit();
}

}  // namespace ood::io
