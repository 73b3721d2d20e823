// Tiny ImageNet (Stanford CS231n): 64x64 images of 200 ImageNet classes, with 500
// training, 50 validation and 50 unlabelled test images per class.
//
// As pytorch-ood's TinyImageNet: tiny-imagenet-200.zip is extracted into root; the
// classes are the sorted folder names (WordNet ids) of tiny-imagenet-200/train/;
// "train" reads train/<wnid>/images/*, "val" reads val/images/<file> in the order of
// val/val_annotations.txt, "test" reads test/images/* with label -1. Images are kept
// as stored (the JPEGs are RGB or greyscale). Files of train and test are sorted
// (pytorch-ood's order depends on the filesystem).
#include <fstream>
#include <map>
#include <sstream>

#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kDataset = "tiny-imagenet";

ood::download::DataSource source(const std::string& subset) {
  ood::download::Resource archive;
  archive.file_name = "tiny-imagenet-200.zip";
  archive.urls = {"http://cs231n.stanford.edu/tiny-imagenet-200.zip"};
  archive.md5 = "90528d7ca1a48142e341f4ef8d21d0de";
  // train/ is needed by every subset: it defines the classes.
  std::vector<std::string> expected = {"tiny-imagenet-200/train"};
  if (subset != "train") expected.push_back("tiny-imagenet-200/" + subset);
  return {kDataset, {archive}, expected};
}

// list_files, with the dataset named in its errors.
std::vector<fs::path> files_in(const fs::path& folder) {
  try {
    return ood::data::list_files(folder);
  } catch (const ood::FileError& e) {
    throw ood::FileError(std::string(kDataset) + ": " + e.what());
  }
}

struct Samples {
  std::vector<fs::path> files;
  std::vector<std::int64_t> labels;
};

// val/val_annotations.txt: one line per image, "file wnid x0 y0 x1 y1" (tab-separated
// upstream; any whitespace is accepted, as pytorch-ood's split()). Blank lines hold no
// sample and are skipped.
Samples read_val_annotations(const fs::path& val, const std::map<std::string, std::int64_t>& class_index,
                             const fs::path& train) {
  const fs::path annotations = val / "val_annotations.txt";
  std::ifstream in(annotations);
  if (!in) throw ood::FileError(std::string(kDataset) + ": " + annotations.string() + ": cannot be read");
  Samples samples;
  std::string line;
  for (std::int64_t number = 1; std::getline(in, line); ++number) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string field; words >> field;) fields.push_back(std::move(field));
    if (fields.empty()) continue;
    const std::string where =
        std::string(kDataset) + ": " + annotations.string() + ":" + std::to_string(number) + ": ";
    if (fields.size() != 6)
      throw ood::FileError(where + "expected 6 whitespace-separated fields (file wnid x0 y0 x1 y1), found " +
                           std::to_string(fields.size()));
    const std::string& name = fields[0];
    // A bare file name: the annotations must not point outside val/images/.
    if (name.find('/') != std::string::npos || name == "." || name == "..")
      throw ood::FileError(where + "'" + name + "' is not a file name");
    const auto cls = class_index.find(fields[1]);
    if (cls == class_index.end())
      throw ood::FileError(where + "class '" + fields[1] + "' is not a class folder of " + train.string());
    samples.files.push_back(val / "images" / name);
    samples.labels.push_back(cls->second);
  }
  if (in.bad()) throw ood::FileError(std::string(kDataset) + ": " + annotations.string() + ": read error");
  // Checked here, not at get(): a missing file is a broken download, not a bad image.
  std::size_t missing = 0;
  std::string first_missing;
  for (const auto& file : samples.files) {
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) continue;
    if (missing++ == 0) first_missing = file.string();
  }
  if (missing > 0)
    throw ood::FileError(std::string(kDataset) + ": " + std::to_string(missing) + " image(s) listed in " +
                         annotations.string() + " do not exist, the first " + first_missing);
  return samples;
}

std::shared_ptr<ood::Dataset> make_tiny_imagenet(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  const std::string subset = p.get_string("subset");
  ood::download::prepare(root, source(subset), p.get_bool("download"));
  const fs::path base = root / "tiny-imagenet-200";
  const fs::path train = base / "train";

  std::vector<std::string> classes = ood::data::list_subfolders(train);
  if (classes.empty())
    throw ood::FileError(std::string(kDataset) + ": " + train.string() + ": no class folders (one per WordNet id)");
  std::map<std::string, std::int64_t> class_index;
  for (std::size_t i = 0; i < classes.size(); ++i) class_index[classes[i]] = static_cast<std::int64_t>(i);

  Samples samples;
  fs::path folder;
  if (subset == "train") {
    folder = train;
    for (const auto& cls : classes)
      for (auto& file : files_in(train / cls / "images")) {
        samples.files.push_back(std::move(file));
        samples.labels.push_back(class_index.at(cls));
      }
  } else if (subset == "val") {
    folder = base / "val" / "images";
    samples = read_val_annotations(base / "val", class_index, train);
  } else {  // test: unlabelled
    folder = base / "test" / "images";
    samples.files = files_in(folder);
    samples.labels.assign(samples.files.size(), -1);
  }

  ood::data::ImageFilesOptions options;
  options.dataset = kDataset;
  options.classes = std::move(classes);
  options.folder = folder;
  // Kept as stored, as pytorch-ood: greyscale JPEGs give 1 channel, so no input_shape.
  return ood::data::image_files_dataset(std::move(samples.files), std::move(samples.labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "Tiny ImageNet: 64x64 images of 200 ImageNet classes (train, val, or unlabelled test)";
  info.paper = "Le and Yang, Tiny ImageNet Visual Recognition Challenge, Stanford CS231N, 2015";
  info.year = 2015;
  info.doc =
      "Samples: float32 [C, 64, 64] in [0, 1] as stored (C = 3, or 1 for the greyscale JPEGs; use to-rgb "
      "to batch them), label: the class index (0..199) for train and val, -1 for test. Classes (info) are "
      "the WordNet ids, sorted.\n"
      "Subsets: train (500 images per class), val (50 per class, labels from val/val_annotations.txt, in "
      "its order), test (10000 images without labels).\n"
      "Layout: root/tiny-imagenet-200/{train/<wnid>/images/*, val/val_annotations.txt, val/images/*, "
      "test/images/*} (the zip's, as pytorch-ood's). Files of train and test are sorted; pytorch-ood keeps "
      "the filesystem's order.\n"
      "Source: cs231n.stanford.edu/tiny-imagenet-200.zip (md5 90528d7ca1a48142e341f4ef8d21d0de, checked "
      "when downloaded). A subset of ImageNet: ImageNet's terms apply (non-commercial research and "
      "education).";
  info.params = {
      ood::data::root_param("folder holding tiny-imagenet-200/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
      ood::ParamSpec::choice("subset", {"train", "val", "test"}, "which split to read").default_value("train"),
  };
  registrar.add_dataset(info, make_tiny_imagenet);
}

}  // namespace

OOD_PLUGIN("tiny-imagenet", "Tiny ImageNet dataset", register_components)
