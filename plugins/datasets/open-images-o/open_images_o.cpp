// OpenImage-O (Wang et al., 2022, as packaged by OpenOOD v1.5): Open Images test
// images without ImageNet-1K objects, an OOD test set for ImageNet models; pytorch-ood
// splits it into "test" (15869 images) and "val" (1763 images) by two file lists.
//
// As pytorch-ood's OpenImagesO: openimage_o.zip is extracted into root/OpenImagesO and
// the samples are root/OpenImagesO/images/<name> for each name of the subset's list, in
// the list's order (which is pytorch-ood's order), as stored, label -1.
//
// The lists (test_openimage_o.json, val_openimage_o.json: JSON arrays of file names)
// ship inside pytorch-ood's Python package, not in the zip. Here each is a resource of
// its own, downloaded from pytorch-ood's repository at a fixed commit and checked by
// MD5, into root/OpenImagesO/ (where a user may also put it by hand). The zip is on
// Google Drive, which ood cannot download from (a confirmation page stands before large
// files): the user puts it into root and `download: true` extracts it.
#include <fstream>
#include <nlohmann/json.hpp>

#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDataset = "open-images-o";
const char* const kDriveId = "1VUFXnB_z70uHfdgJG2E_pjYOcEgqM7tE";
// pytorch-ood v0.2.0; the lists are unchanged there since they were added (ded777f).
const char* const kListsUrl =
    "https://raw.githubusercontent.com/kkirchheim/pytorch-ood/d04767360a382d2ea1678d5a571cae66b73e5206/"
    "src/pytorch_ood/dataset/img/resources/";

std::string list_name(const std::string& subset) { return subset + "_openimage_o.json"; }

ood::download::DataSource source(const fs::path& root, const std::string& subset) {
  ood::download::Resource list;
  list.file_name = list_name(subset);
  list.urls = {kListsUrl + list.file_name};
  list.md5 = subset == "test" ? "3d18ffb6ae7e02738888f9c68975b021" : "85e38d2d6ae062f08a37b4cf177cdbf6";
  list.unpack = ood::download::Resource::Unpack::None;
  list.folder = "OpenImagesO";
  list.provides = {"OpenImagesO/" + list.file_name};
  list.manual = "the file list of pytorch-ood's OpenImagesO (src/pytorch_ood/dataset/img/resources/ in its "
                "repository or installed package)";

  ood::download::Resource images;
  images.file_name = "openimage_o.zip";
  // No URL: Google Drive only, and no published checksum.
  images.extract_to = "OpenImagesO";
  images.provides = {"OpenImagesO/images"};
  images.manual = std::string("Google Drive file ") + kDriveId + " (https://drive.google.com/uc?id=" + kDriveId +
                  "; the file OpenOOD v1.5's scripts/download/download.py fetches as 'openimage_o') cannot be "
                  "downloaded by ood: get it with a browser or gdown, put it into " + root.string() +
                  "; then \"download\": true (or `ood data fetch`) extracts it into " +
                  (root / "OpenImagesO").string() + " (or extract it there yourself)";
  // The list first: it can be downloaded even while the zip is still missing.
  return {kDataset, {list, images}, {"OpenImagesO/images", "OpenImagesO/" + list_name(subset)}};
}

// The file names of a list: a JSON array of bare names (anything else would let the
// list name files outside the images folder).
std::vector<std::string> read_list(const fs::path& file) {
  const std::string where = std::string(kDataset) + ": " + file.string();
  std::ifstream in(file);
  if (!in) throw ood::FileError(where + ": cannot be read");
  nlohmann::json list;
  try {
    list = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ood::FileError(where + ": not valid JSON: " + e.what());
  }
  if (!list.is_array() || list.empty())
    throw ood::FileError(where + ": expected a non-empty JSON array of image file names");
  std::vector<std::string> names;
  names.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& item = list[i];
    const std::string name = item.is_string() ? item.get<std::string>() : std::string();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      throw ood::FileError(where + ": entry " + std::to_string(i) + " (" + item.dump() + ") is not a file name");
    names.push_back(name);
  }
  return names;
}

std::shared_ptr<ood::Dataset> make_open_images_o(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string subset = p.get_string("subset");
  ood::download::prepare(root, source(root, subset), p.get_bool("download"));
  const fs::path list_file = root / "OpenImagesO" / list_name(subset);
  const fs::path folder = root / "OpenImagesO" / "images";

  std::vector<fs::path> files;
  std::size_t missing = 0;
  std::string first_missing;
  for (const auto& name : read_list(list_file)) {
    files.push_back(folder / name);
    std::error_code ec;
    // Checked here, not at get(): a missing file is an incomplete zip or the wrong list.
    if (!fs::is_regular_file(files.back(), ec) && missing++ == 0) first_missing = files.back().string();
  }
  if (missing > 0)
    throw ood::FileError(std::string(kDataset) + ": " + std::to_string(missing) + " of the " +
                         std::to_string(files.size()) + " images listed in " + list_file.string() +
                         " do not exist, the first " + first_missing);
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = kDataset;
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "OpenImage-O (OpenOOD): Open Images without ImageNet objects, test 15869 / val 1763, OOD (label -1)";
  info.paper = "Wang et al., ViM: Out-Of-Distribution with Virtual-logit Matching, CVPR 2022";
  info.year = 2022;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs of varying size; use to-rgb and resize or "
      "center-crop to batch them), label -1.\n"
      "Subsets: test (15869 images) and val (1763), by pytorch-ood's file lists test_openimage_o.json and "
      "val_openimage_o.json; samples in the list's order, as pytorch-ood.\n"
      "Layout: root/OpenImagesO/images/<file> (openimage_o.zip extracted into root/OpenImagesO, as "
      "pytorch-ood and OpenOOD do) and root/OpenImagesO/<subset>_openimage_o.json.\n"
      "Source: OpenOOD v1.5's Google Drive file 1VUFXnB_z70uHfdgJG2E_pjYOcEgqM7tE (openimage_o.zip, no "
      "published checksum); Google Drive cannot be downloaded from automatically: put the zip into root "
      "and set download to true to extract it. The lists are downloaded from pytorch-ood's repository "
      "(github.com/kkirchheim/pytorch-ood, Apache-2.0, src/pytorch_ood/dataset/img/resources/, checked by "
      "MD5). Open Images lists its images as CC BY 2.0 (each under its author's licence).";
  info.params = {
      ood::data::root_param("folder holding OpenImagesO/ (or the placed openimage_o.zip)"),
      ood::ParamSpec::boolean("download",
                              "download the file list and extract openimage_o.zip placed in root when the data "
                              "is missing (the zip cannot be downloaded automatically)")
          .default_value(false),
      ood::ParamSpec::choice("subset", {"test", "val"}, "which file list to read").default_value("test"),
  };
  registrar.add_dataset(info, make_open_images_o);
}

}  // namespace

OOD_PLUGIN("open-images-o", "OpenImage-O dataset (OpenOOD)", register_components)
