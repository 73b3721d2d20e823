// NINCO (No ImageNet Class Objects; Bitterwolf et al., 2023): 5879 images of 64 classes,
// each checked by hand to contain no ImageNet-1K object, an OOD test set for ImageNet
// models.
//
// As pytorch-ood's NINCO: NINCO_all.tar.gz is extracted into root and every file of
// root/NINCO/NINCO_OOD_classes/<class>/ is a sample, as stored, label -1 (the
// archive's other folders, NINCO_OOD_unit_tests and NINCO_popular_datasets_subsamples,
// are not part of it). Files are sorted (pytorch-ood's order depends on the
// filesystem). The MD5 is checked on download (pytorch-ood declares it but never
// checks it).
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/error.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "NINCO_all.tar.gz";
  archive.urls = {"https://zenodo.org/record/8013288/files/NINCO_all.tar.gz"};
  archive.md5 = "b9ffae324363cd900a81ce3c367cd834";
  return {"ninco", {archive}, {"NINCO/NINCO_OOD_classes"}};
}

std::shared_ptr<ood::Dataset> make_ninco(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path folder = root / "NINCO" / "NINCO_OOD_classes";
  // One level deep, as pytorch-ood: NINCO_OOD_classes/<class>/<file>.
  std::vector<fs::path> files;
  for (const auto& cls : ood::data::list_subfolders(folder))
    for (auto& f : ood::data::list_files(folder / cls)) files.push_back(std::move(f));
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "ninco";
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "ninco";
  info.summary = "NINCO: 5879 images of 64 classes free of ImageNet objects, OOD (label -1)";
  info.paper = "Bitterwolf et al., In or Out? Fixing ImageNet Out-of-Distribution Detection Evaluation, ICML 2023";
  info.year = 2023;
  info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (JPEGs and PNGs of varying size; use to-rgb and resize "
      "or center-crop to batch them), label -1.\n"
      "Layout: root/NINCO/NINCO_OOD_classes/<class>/<file> (the archive's, as pytorch-ood's; the unit-test "
      "and popular-dataset folders of the archive are not read). Files are sorted; pytorch-ood keeps the "
      "filesystem's order. Metrics over the whole set differ slightly from the paper's, which averages per "
      "class (as pytorch-ood notes).\n"
      "Source: zenodo.org/record/8013288 (NINCO_all.tar.gz, md5 b9ffae324363cd900a81ce3c367cd834). The "
      "images come from other datasets and keep their licences; research use.";
  info.params = {
      ood::data::root_param("folder holding NINCO/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_ninco);
}

}  // namespace

OOD_PLUGIN("ninco", "NINCO dataset", register_components)
