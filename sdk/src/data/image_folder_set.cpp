#include "ood/data/image_folder_set.hpp"

#include <memory>
#include <utility>
#include <vector>

#include "ood/data/dataset_params.hpp"
#include "ood/error.hpp"

namespace ood::data {

namespace fs = std::filesystem;

namespace {

std::shared_ptr<Dataset> make_image_folder_set(const ImageFolderSet& set, const Params& params, Context& context) {
  const std::string& name = set.info.name;
  const fs::path root = dataset_root(params, context);
  download::prepare(root, set.source(root), params.get_bool("download"));
  const fs::path folder = root / set.folder;
  ImageFilesOptions options;
  options.dataset = name;
  options.mode = set.mode;
  options.folder = folder;
  std::vector<fs::path> files;
  std::vector<std::int64_t> labels;
  switch (set.layout) {
    case ImageFolderSet::Layout::Files:
      files = list_files(folder, set.list);
      break;
    case ImageFolderSet::Layout::FilesInSubfolders:
      for (const auto& sub : list_subfolders(folder))
        for (auto& f : list_files(folder / sub, set.list)) files.push_back(std::move(f));
      break;
    case ImageFolderSet::Layout::ClassSubfolders: {
      FolderClasses classes;
      try {
        classes = folder_classes(folder, set.list);
      } catch (const FileError& e) {
        // folder_classes cannot know which dataset it reads for.
        throw FileError(name + ": " + e.what());
      }
      options.classes = std::move(classes.classes);
      files = std::move(classes.files);
      labels = std::move(classes.labels);
      break;
    }
  }
  if (set.layout != ImageFolderSet::Layout::ClassSubfolders) labels.assign(files.size(), set.label);
  return image_files_dataset(std::move(files), std::move(labels), options);
}

}  // namespace

void add_image_folder_set(Registrar& registrar, ImageFolderSet set) {
  ComponentInfo info = set.info;
  info.kind = Kind::Dataset;
  info.params = {
      root_param(set.root_doc),
      set.download_doc.empty() ? download_param()
                               : ParamSpec::boolean("download", set.download_doc).default_value(false),
  };
  auto shared = std::make_shared<const ImageFolderSet>(std::move(set));
  registrar.add_dataset(info, [shared](const Params& params, Context& context) {
    return make_image_folder_set(*shared, params, context);
  });
}

std::string google_drive_manual(const std::string& drive_id, const std::string& where_linked, const fs::path& root,
                                const std::string& download_does) {
  return "Google Drive file " + drive_id + " (https://drive.google.com/uc?id=" + drive_id + where_linked +
         ") cannot be downloaded by ood: get it with a browser or gdown, put it into " + root.string() +
         "; then \"download\": true (or `ood data fetch`) " + download_does + " (or extract it there yourself)";
}

}  // namespace ood::data
