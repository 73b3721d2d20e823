#include "ood/data/image_files.hpp"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <system_error>
#include <utility>

#include "ood/checks.hpp"
#include "ood/error.hpp"

namespace ood::data {

namespace {

namespace fs = std::filesystem;

std::string lower_ascii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Byte order of the paths' text (std::string compares as unsigned char), not
// std::filesystem::path's element-wise order: "a-b/x" sorts before "a/x" as in
// Python's sorted() of strings.
bool byte_order(const fs::path& a, const fs::path& b) { return a.native() < b.native(); }

// An extension filter compiled once per listing: ends-with on the name, like
// torchvision's `filename.lower().endswith(extensions)`.
class ExtensionFilter {
 public:
  explicit ExtensionFilter(const ListOptions& options) : case_sensitive_(options.case_sensitive) {
    for (const auto& e : options.extensions) extensions_.push_back(case_sensitive_ ? e : lower_ascii(e));
  }
  bool accepts(const std::string& name) const {
    if (extensions_.empty()) return true;
    const std::string compared = case_sensitive_ ? name : lower_ascii(name);
    return std::any_of(extensions_.begin(), extensions_.end(), [&](const std::string& e) {
      return compared.size() >= e.size() && compared.compare(compared.size() - e.size(), e.size(), e) == 0;
    });
  }

 private:
  bool case_sensitive_;
  std::vector<std::string> extensions_;
};

// The files of one directory, by name.
struct DirectoryFiles {
  fs::path directory;
  std::vector<std::string> names;
};

using DirectoryIdentity = std::pair<dev_t, ino_t>;

// Depth-first in sorted order (so which of two symlinked routes to a directory is kept
// does not depend on the filesystem's listing order). Symbolic links are followed;
// `visited` holds the (device, inode) of every directory entered, so a link back to an
// ancestor cannot loop and a directory reached twice is listed once.
void walk(const fs::path& directory, const ListOptions& options, const ExtensionFilter& filter,
          std::set<DirectoryIdentity>& visited, std::vector<DirectoryFiles>& out) {
  std::vector<std::string> files, subdirectories;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) throw FileError(directory.string() + ": cannot list the directory: " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw FileError(directory.string() + ": cannot list the directory: " + ec.message());
    std::string name = it->path().filename().string();
    if (options.skip_hidden && !name.empty() && name.front() == '.') continue;
    std::error_code status_error;
    const fs::file_status status = it->status(status_error);  // follows symbolic links
    if (status_error) continue;                                // a dangling link is no file
    if (fs::is_regular_file(status)) {
      if (filter.accepts(name)) files.push_back(std::move(name));
    } else if (fs::is_directory(status) && options.recursive) {
      subdirectories.push_back(std::move(name));
    }
  }
  std::sort(files.begin(), files.end());
  std::sort(subdirectories.begin(), subdirectories.end());
  out.push_back({directory, std::move(files)});
  for (const auto& name : subdirectories) {
    const fs::path subdirectory = directory / name;
    struct stat info {};
    if (::stat(subdirectory.c_str(), &info) != 0) continue;  // vanished meanwhile
    if (!visited.insert({info.st_dev, info.st_ino}).second) continue;
    walk(subdirectory, options, filter, visited, out);
  }
}

std::vector<DirectoryFiles> walk_tree(const fs::path& folder, const ListOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw FileError(folder.string() + (fs::exists(folder, ec) ? ": not a directory" : ": no such directory"));
  std::set<DirectoryIdentity> visited;
  struct stat info {};
  if (::stat(folder.c_str(), &info) == 0) visited.insert({info.st_dev, info.st_ino});
  std::vector<DirectoryFiles> directories;
  walk(folder, options, ExtensionFilter(options), visited, directories);
  return directories;
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) {
    if (!text.empty()) text += ' ';
    text += item;
  }
  return text;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

class ImageFilesDataset final : public Dataset {
 public:
  ImageFilesDataset(std::vector<fs::path> files, std::vector<std::int64_t> labels, ImageFilesOptions options)
      : files_(std::move(files)), labels_(std::move(labels)), options_(std::move(options)) {}

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }

  Sample get(std::int64_t index) const override {
    if (index < 0 || index >= size())
      throw InvalidArgument(options_.dataset + ": index " + std::to_string(index) + " out of range [0, " +
                            std::to_string(size()) + ")");
    const auto i = static_cast<std::size_t>(index);
    at::Tensor image;
    try {
      image = io::image_to_tensor(io::read_image(files_[i], options_.mode));
    } catch (const FileError& e) {
      // The decoder's message already names the file; add which dataset it belongs to.
      throw FileError(options_.dataset + ": " + e.what());
    }
    if (!options_.input_shape.empty() && !image.sizes().equals(options_.input_shape))
      throw FileError(options_.dataset + ": " + files_[i].string() + ": decoded to " + describe_tensor(image) +
                      ", but every image of this dataset should be " + shape_text(options_.input_shape));
    return {std::move(image), at::scalar_tensor(labels_[i], at::kLong)};
  }

  DatasetInfo info() const override {
    DatasetInfo info;
    info.classes = options_.classes;
    info.task = Task::Classification;
    info.modality = Modality::Image;
    info.input_shape = options_.input_shape;
    return info;
  }

  at::Tensor labels() const override {
    return at::tensor(at::ArrayRef<std::int64_t>(labels_), at::TensorOptions().dtype(at::kLong));
  }

 private:
  std::vector<fs::path> files_;
  std::vector<std::int64_t> labels_;
  ImageFilesOptions options_;
};

}  // namespace

std::vector<std::string> image_extensions() {
  return {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
}

std::vector<fs::path> list_files(const fs::path& folder, const ListOptions& options) {
  std::vector<fs::path> files;
  for (const auto& directory : walk_tree(folder, options))
    for (const auto& name : directory.names) files.push_back(directory.directory / name);
  std::sort(files.begin(), files.end(), byte_order);
  return files;
}

std::vector<std::string> list_subfolders(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw FileError(folder.string() + (fs::exists(folder, ec) ? ": not a directory" : ": no such directory"));
  std::vector<std::string> names;
  fs::directory_iterator it(folder, ec);
  if (ec) throw FileError(folder.string() + ": cannot list the directory: " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw FileError(folder.string() + ": cannot list the directory: " + ec.message());
    std::string name = it->path().filename().string();
    if (!name.empty() && name.front() == '.') continue;  // hidden
    std::error_code status_error;
    if (fs::is_directory(it->status(status_error)) && !status_error) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<Dataset> image_files_dataset(std::vector<fs::path> files, std::vector<std::int64_t> labels,
                                             const ImageFilesOptions& options) {
  const std::string where = options.folder.empty() ? std::string() : " in " + options.folder.string();
  if (files.empty()) throw FileError(options.dataset + ": no image files" + where);
  if (labels.size() != files.size())
    throw InvalidArgument(options.dataset + ": " + std::to_string(labels.size()) + " labels for " +
                          std::to_string(files.size()) + " image files" + where);
  return std::make_shared<ImageFilesDataset>(std::move(files), std::move(labels), options);
}

FolderClasses folder_classes(const fs::path& folder, const ListOptions& options) {
  FolderClasses result;
  result.classes = list_subfolders(folder);
  if (result.classes.empty()) throw FileError(folder.string() + ": no class folders (expected one sub-folder per class)");
  ListOptions recursive = options;
  recursive.recursive = true;
  for (std::size_t label = 0; label < result.classes.size(); ++label) {
    const fs::path class_folder = folder / result.classes[label];
    std::vector<DirectoryFiles> directories = walk_tree(class_folder, recursive);
    // torchvision: sorted(os.walk(...)) orders the directories by their path string,
    // then each directory's files by name.
    std::sort(directories.begin(), directories.end(),
              [](const DirectoryFiles& a, const DirectoryFiles& b) { return byte_order(a.directory, b.directory); });
    const std::size_t before = result.files.size();
    for (const auto& directory : directories)
      for (const auto& name : directory.names) {
        result.files.push_back(directory.directory / name);
        result.labels.push_back(static_cast<std::int64_t>(label));
      }
    if (result.files.size() == before)
      throw FileError(class_folder.string() + ": class folder '" + result.classes[label] + "' has no file" +
                      (options.extensions.empty() ? std::string() : " with extension " + join(options.extensions)));
  }
  return result;
}

}  // namespace ood::data
