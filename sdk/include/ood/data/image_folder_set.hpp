#pragma once
// Image-folder datasets declared instead of written: most of pytorch-ood's image OOD sets
// are "an archive, extracted into root, whose folder of images is the set". Each such
// plugin used to repeat the same factory (prepare, list, build) and parameter list; an
// ImageFolderSet says only what differs (texts, source, folder, listing, labels) and
// add_image_folder_set registers it, so the sets read, default and fail the same way.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/export.hpp"
#include "ood/io/image.hpp"
#include "ood/plugin.hpp"

namespace ood::data {

struct ImageFolderSet {
  /// Which files of `folder` are samples, and their labels.
  enum class Layout {
    /// The files of `folder` (recursively if `list.recursive`), label `label`.
    Files,
    /// The files of each sub-folder of `folder` in sorted order (files directly in
    /// `folder` are not samples), label `label`.
    FilesInSubfolders,
    /// torchvision's DatasetFolder (data::folder_classes): label = index of the sorted
    /// class sub-folder, info().classes = their names.
    ClassSubfolders,
  };

  /// name, summary, paper, year, doc; kind and params are set by add_image_folder_set.
  ComponentInfo info;
  /// The `root` parameter's doc ("folder holding LSUN/ (or where to download it)").
  std::string root_doc;
  /// The `download` parameter's doc; empty: data::download_param()'s.
  std::string download_doc;
  /// What download::prepare gets; given the root because manual instructions name it.
  std::function<download::DataSource(const std::filesystem::path& root)> source;
  /// The images' folder relative to root ("LSUN/test").
  std::filesystem::path folder;
  Layout layout = Layout::Files;
  ListOptions list;
  io::ImageMode mode = io::ImageMode::Keep;
  /// The label of every sample for Files and FilesInSubfolders (-1: an OOD set).
  std::int64_t label = -1;
};

/// Registers `set` as a dataset with params `root` (data::root_param(set.root_doc)) and
/// `download`; its factory prepares the root (download::prepare), lists the files and
/// builds an image_files_dataset over them, named set.info.name in every message.
OOD_SDK_API void add_image_folder_set(Registrar& registrar, ImageFolderSet set);

/// The `manual` text of a Google Drive file, which ood cannot download (a confirmation
/// page stands before large files): "Google Drive file <id> (https://drive.google.com/
/// uc?id=<id><where_linked>) cannot be downloaded by ood: get it with a browser or gdown,
/// put it into <root>; then "download": true (or `ood data fetch`) <download_does> (or
/// extract it there yourself)". `where_linked` starts with its separator (", linked
/// from ..." or "; the file ...").
OOD_SDK_API std::string google_drive_manual(const std::string& drive_id, const std::string& where_linked,
                                            const std::filesystem::path& root, const std::string& download_does);

}  // namespace ood::data
