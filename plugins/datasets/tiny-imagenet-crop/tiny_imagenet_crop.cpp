// TinyImageNet (crop), one of the OOD test sets of ODIN (Liang et al., 2018): crops of
// Tiny ImageNet test images, used as OOD data for CIFAR models.
//
// As pytorch-ood's TinyImageNetCrop: the archive Imagenet.tar.gz is extracted into root,
// every file of root/Imagenet/test/ is a sample, converted to RGB (PIL's
// convert("RGB")), label -1. Files are sorted (pytorch-ood's order depends on the
// filesystem).
#include "ood/data/dataset_params.hpp"
#include "ood/data/image_files.hpp"
#include "ood/download/resources.hpp"
#include "ood/plugin.hpp"

namespace {

namespace fs = std::filesystem;

ood::download::DataSource source() {
  ood::download::Resource archive;
  archive.file_name = "Imagenet.tar.gz";
  archive.urls = {"https://www.dropbox.com/s/raw/avgm2u562itwpkl/Imagenet.tar.gz"};
  archive.md5 = "7c0827e4246c3718a5ee076e999e52e5";
  return {"tiny-imagenet-crop", {archive}, {"Imagenet/test"}};
}

std::shared_ptr<ood::Dataset> make_tiny_imagenet_crop(const ood::Params& p, ood::Context& context) {
  const fs::path root = ood::data::dataset_root(p, context);
  ood::download::prepare(root, source(), p.get_bool("download"));
  const fs::path folder = root / "Imagenet" / "test";
  std::vector<fs::path> files = ood::data::list_files(folder);
  std::vector<std::int64_t> labels(files.size(), -1);
  ood::data::ImageFilesOptions options;
  options.dataset = "tiny-imagenet-crop";
  options.mode = ood::io::ImageMode::Rgb;
  // The ODIN paper gives 32x32 for every image; not checked on the archive, so no
  // input_shape is promised (a wrong promise would fail at get()).
  options.folder = folder;
  return ood::data::image_files_dataset(std::move(files), std::move(labels), options);
}

void register_components(ood::Registrar& registrar) {
  ood::ComponentInfo info;
  info.kind = ood::Kind::Dataset;
  info.name = "tiny-imagenet-crop";
  info.summary = "TinyImageNet (crop), the ODIN test set: 10000 crops of Tiny ImageNet images, OOD (label -1)";
  info.paper = "Liang et al., Enhancing The Reliability of Out-of-distribution Image Detection in Neural "
               "Networks (ODIN), ICLR 2018";
  info.year = 2018;
  info.doc =
      "Samples: float32 [3, H, W] in [0, 1], converted to RGB as pytorch-ood does (the ODIN paper gives "
      "10000 images of 32x32; not checked here), label -1.\n"
      "Layout: root/Imagenet/test/<file> (the archive's, as pytorch-ood's). "
      "Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source: ODIN's Dropbox link dropbox.com/s/raw/avgm2u562itwpkl/Imagenet.tar.gz (md5 "
      "7c0827e4246c3718a5ee076e999e52e5). Derived from Tiny ImageNet, so "
      "ImageNet's terms apply (non-commercial research and education).";
  info.params = {
      ood::data::root_param("folder holding Imagenet/ (or where to download it)"),
      ood::ParamSpec::boolean("download", "download and extract the archive when the data is missing")
          .default_value(false),
  };
  registrar.add_dataset(info, make_tiny_imagenet_crop);
}

}  // namespace

OOD_PLUGIN("tiny-imagenet-crop", "TinyImageNet (crop) dataset of ODIN", register_components)
