#pragma once
// Dataset resources: the files a dataset is made of, where they come from, how they are
// checked and unpacked, and how a dataset root is prepared from them.
//
// prepare() follows the layout torchvision and pytorch-ood produce, so a root prepared
// by pytorch-ood works unchanged, and it does no work twice:
//   1. every `expected` path exists under root -> used as it is (with or without the
//      archives; pytorch-ood insists on the archive);
//   2. otherwise, for each resource: an archive already in root whose checksum matches
//      is reused, else it is downloaded (resume, retries, verification); then it is
//      extracted (ood::io::extract_archive: path checks, staging, atomic moves);
//   3. with download false and data missing: one ood::FileError naming the dataset,
//      the missing files and, for each resource, its URL and where to put it.
//
// $OOD_RESOURCES names a JSON file overriding any resource by its file name:
//   {"cifar-10-python.tar.gz": {"url": "http://mirror/...", "md5": "..."}}
// ("url" and one of "md5"/"sha256" may be given; a given checksum replaces both of
// the built-in ones). For mirrors, air-gapped sites and tests with miniature archives.
#include <filesystem>
#include <string>
#include <vector>

#include "ood/download/download.hpp"
#include "ood/export.hpp"

namespace ood::download {

struct Resource {
  /// The file's name once downloaded; also its key in $OOD_RESOURCES.
  std::string file_name;
  /// Where to get it, tried in order (mirrors). Empty: it cannot be downloaded (ImageNet,
  /// Google Drive files): `manual` says how to get it.
  std::vector<std::string> urls;
  /// Published checksums as hex (either, both or none).
  std::string md5;
  std::string sha256;
  enum class Unpack { None, Extract, Decompress };
  /// None: the file is used as it is; Extract: an archive, extracted into `extract_to`;
  /// Decompress: a lone .gz/.xz/.bz2 written to `extract_to`/<name without suffix>.
  Unpack unpack = Unpack::Extract;
  /// Folder (relative to the dataset root) the file is downloaded to; "" = root.
  std::string folder;
  /// Folder (relative to the dataset root) it is extracted to; "" = `folder`.
  std::string extract_to;
  /// For files that cannot be downloaded: what to do instead (shown in messages).
  std::string manual;
  /// Paths (relative to the dataset root) that exist once this resource is unpacked;
  /// all present: the resource is skipped (a dataset made of several archives redoes
  /// only what is missing). Empty: processed whenever the dataset is not prepared.
  std::vector<std::string> provides;
};

struct DataSource {
  /// The dataset's component name, for messages ("cifar10").
  std::string dataset;
  std::vector<Resource> resources;
  /// Paths relative to the root that exist once the data is in place (a folder or a
  /// file each). All present: nothing is downloaded, extracted or checked.
  std::vector<std::string> expected;
};

/// The resource with the overrides of $OOD_RESOURCES applied (read on every call).
/// Throws ood::FileError naming the file and the entry for a malformed override file.
OOD_SDK_API Resource with_overrides(Resource resource);

/// Makes `source.expected` exist under `root` (see above). `options` tune downloads
/// (progress, attempts); their checksum fields are ignored (each resource has its own).
OOD_SDK_API void prepare(const std::filesystem::path& root, const DataSource& source, bool download,
                         const DownloadOptions& options = {});

/// Whether every `expected` path of `source` exists under `root`.
OOD_SDK_API bool is_prepared(const std::filesystem::path& root, const DataSource& source);

}  // namespace ood::download
