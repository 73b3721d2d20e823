// Chars74k (de Campos, Babu, Varma, VISAPP 2009), the English "GoodImg" part: 7705
// photographs of characters cropped from natural scenes, 62 classes (0-9, A-Z, a-z),
// used by pytorch-ood as an OOD set for digit and letter models.
//
// As pytorch-ood's Chars74k: EnglishImg.tgz (md5 checked) and ListsTXT.tgz (unused, as
// upstream) are downloaded to root/chars74k/ and extracted there; samples are
// root/chars74k/English/Img/GoodImg/Bmp/SampleNNN/<file> (PNGs despite the folder's
// name), decoded as stored, label int(NNN) - 1 remapped densely over the labels present
// (the identity with all 62 folders). Files are sorted (pytorch-ood's order depends on
// the filesystem).
#include <algorithm>
#include <cctype>
#include <map>

#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* kDataset = "chars74k";
constexpr const char* kImages = "chars74k/English/Img/GoodImg/Bmp";
constexpr int kClasses = 62;

ood::download::DataSource source() {
  ood::download::Resource images;
  images.file_name = "EnglishImg.tgz";
  images.urls = {"http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/EnglishImg.tgz"};
  images.md5 = "85d157e0c58f998e1cda8def62bcda0d";
  images.folder = "chars74k";
  images.provides = {kImages};
  ood::download::Resource lists;
  lists.file_name = "ListsTXT.tgz";
  lists.urls = {"http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/ListsTXT.tgz"};
  lists.md5 = "7d7b8038b3c47bf2a1c5a80c1dd79a0d";
  lists.folder = "chars74k";
  return {kDataset, {images, lists}, {kImages}};
}

// Sample001..Sample062 hold 0-9, A-Z, a-z in that order.
std::string class_name(int label) {
  if (label < 10) return std::string(1, static_cast<char>('0' + label));
  if (label < 36) return std::string(1, static_cast<char>('A' + label - 10));
  return std::string(1, static_cast<char>('a' + label - 36));
}

// "Sample007" -> 6; anything else is not a class folder of this dataset.
int label_of_folder(const fs::path& folder) {
  const std::string name = folder.filename().string();
  const std::string prefix = "Sample";
  const std::string digits = name.substr(std::min(prefix.size(), name.size()));
  const bool numbered = name.rfind(prefix, 0) == 0 && !digits.empty() && digits.size() <= 4 &&
                        std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
  const int number = numbered ? std::stoi(digits) : 0;
  if (number < 1 || number > kClasses)
    throw ood::FileError(std::string(kDataset) + ": " + folder.string() +
                         ": not a class folder (expected Sample001 to Sample062)");
  return number - 1;
}

std::shared_ptr<ood::Dataset> make_chars74k(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path images = root / kImages;
  std::vector<fs::path> files;
  std::vector<int> raw_labels;
  try {
    for (const auto& sample : ood::data::list_subfolders(images)) {
      const int label = label_of_folder(images / sample);
      for (auto& f : ood::data::list_files(images / sample)) {
        files.push_back(std::move(f));
        raw_labels.push_back(label);
      }
    }
  } catch (const ood::FileError& e) {
    const std::string message = e.what();
    if (message.rfind(std::string(kDataset) + ": ", 0) == 0) throw;
    throw ood::FileError(std::string(kDataset) + ": " + message);
  }
  // Dense labels over the classes present, in sorted order, as pytorch-ood.
  std::map<int, std::int64_t> dense;
  for (const int label : raw_labels) dense.emplace(label, 0);
  ood::data::ImageFilesOptions options;
  for (auto& [label, index] : dense) {
    index = static_cast<std::int64_t>(options.classes.size());
    options.classes.push_back(class_name(label));
  }
  std::vector<std::int64_t> labels;
  labels.reserve(raw_labels.size());
  for (const int label : raw_labels) labels.push_back(dense.at(label));
  options.dataset = kDataset;
  options.folder = images;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = kDataset;
  info.summary = "Chars74k (English, GoodImg): characters in natural images, 62 classes 0-9 A-Z a-z";
  info.paper = "de Campos, Babu, Varma, Character Recognition in Natural Images, VISAPP 2009";
  info.year = 2009;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (small PNGs of varying size, mostly RGB; no "
      "conversion: use to-rgb and resize to batch them), label = class index (not -1, as pytorch-ood): "
      "SampleNNN holds class NNN - 1, remapped densely over the folders present (0-9, A-Z, a-z with all 62; "
      "info().classes names them).\n"
      "Layout: EnglishImg.tgz and ListsTXT.tgz extracted into root/chars74k/; samples are "
      "root/chars74k/English/Img/GoodImg/Bmp/SampleNNN/<file> (every file, sorted).\n"
      "Source: ee.surrey.ac.uk/CVSSP/demos/chars74k (EnglishImg.tgz, md5 85d157e0c58f998e1cda8def62bcda0d; "
      "ListsTXT.tgz, md5 7d7b8038b3c47bf2a1c5a80c1dd79a0d); free for research with acknowledgement and "
      "citation of the paper (the site's disclaimer).";
  info.params = {
      ood::data::root_param("folder holding chars74k/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archives when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_chars74k);
}

}  // namespace

OOD_PLUGIN("chars74k", "Chars74k dataset", register_components)
