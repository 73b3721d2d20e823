#pragma once
// Datasets over image files on disk, the shape of most of pytorch-ood's image sets:
// a sorted list of files, a label per file (or -1 for every file of an OOD set), decoded
// on get() (so memory stays flat and loader threads decode in parallel).
//
// Order: files are sorted by path (byte order), unlike pytorch-ood's os.listdir order,
// which depends on the filesystem and is not reproducible.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ood/dataset.hpp"
#include "ood/export.hpp"
#include "ood/io/image.hpp"

namespace ood::data {

struct ListOptions {
  /// Descend into sub-folders (following symbolic links within the tree).
  bool recursive = false;
  /// Lower-case extensions with the dot (".jpg"); compared case-insensitively unless
  /// `case_sensitive`. Empty: every regular file.
  std::vector<std::string> extensions;
  bool case_sensitive = false;
  /// Skip names starting with '.' (hidden files, macOS "._" forks).
  bool skip_hidden = true;
};

/// torchvision's ImageFolder extensions (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp).
OOD_SDK_API std::vector<std::string> image_extensions();

/// The regular files under `folder`, sorted. Throws ood::FileError when `folder` is not
/// a directory.
OOD_SDK_API std::vector<std::filesystem::path> list_files(const std::filesystem::path& folder,
                                                          const ListOptions& options = {});

/// The sorted names of the sub-folders of `folder` (hidden ones skipped).
OOD_SDK_API std::vector<std::string> list_subfolders(const std::filesystem::path& folder);

struct ImageFilesOptions {
  /// Component name, for messages ("textures").
  std::string dataset;
  io::ImageMode mode = io::ImageMode::Keep;
  std::vector<std::string> classes;  // DatasetInfo::classes
  /// Input shape when every image has it (e.g. {3, 32, 32}); empty when it varies.
  /// When set, get() checks each decoded image against it.
  std::vector<std::int64_t> input_shape;
  /// Where the files were found, for messages (the function cannot name the folder
  /// of an empty file list otherwise). May be empty.
  std::filesystem::path folder;
};

/// Files with one label each; get(i) decodes file i (float [C, H, W] in [0, 1]).
/// Throws ood::FileError (naming the dataset and the folder) when `files` is empty, and
/// on get() naming the file that fails to decode.
OOD_SDK_API std::shared_ptr<Dataset> image_files_dataset(std::vector<std::filesystem::path> files,
                                                         std::vector<std::int64_t> labels,
                                                         const ImageFilesOptions& options);

struct FolderClasses {
  std::vector<std::string> classes;          // sorted sub-folder names
  std::vector<std::filesystem::path> files;  // sorted within each class, classes in order
  std::vector<std::int64_t> labels;          // class index of each file
};

/// torchvision's DatasetFolder: classes are the sorted sub-folders of `folder`, files
/// are found recursively in each (`options.recursive` is implied), in torchvision's
/// order: by directory path (byte order), then by name, so sample indices match
/// torchvision's ImageFolder on the same tree (when neither skips hidden files). Throws ood::FileError when there is no class
/// folder, or a class has no file (naming it).
OOD_SDK_API FolderClasses folder_classes(const std::filesystem::path& folder, const ListOptions& options);

}  // namespace ood::data
