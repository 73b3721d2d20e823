// The four OOD test sets of ODIN (Liang et al., 2018) that pytorch-ood reads: LSUN (crop),
// LSUN (resize), TinyImageNet (crop) and TinyImageNet (resize), used as OOD data for
// CIFAR models. They differ only in archive and folder, so this one source is built once
// per set; the define (OOD_ODIN_LSUN_CROP, ...) says which (as cifar10-c's cifar_c.cpp).
//
// As pytorch-ood's LSUNCrop, LSUNResize, TinyImageNetCrop and TinyImageNetResize: the
// archive is extracted into root, every file of its image folder is a sample, converted
// to RGB (PIL's convert("RGB")), label -1. Files are sorted (pytorch-ood's order depends
// on the filesystem).
#include <stdexcept>
#include <string>

#include "ood/data/image_folder_set.hpp"

#if defined(OOD_ODIN_LSUN_CROP)
#define OOD_ODIN_SET "lsun-crop"
#define OOD_ODIN_PLUGIN_SUMMARY "LSUN (crop) dataset of ODIN"
#elif defined(OOD_ODIN_LSUN_RESIZE)
#define OOD_ODIN_SET "lsun-resize"
#define OOD_ODIN_PLUGIN_SUMMARY "LSUN (resize) dataset of ODIN"
#elif defined(OOD_ODIN_TINY_IMAGENET_CROP)
#define OOD_ODIN_SET "tiny-imagenet-crop"
#define OOD_ODIN_PLUGIN_SUMMARY "TinyImageNet (crop) dataset of ODIN"
#elif defined(OOD_ODIN_TINY_IMAGENET_RESIZE)
#define OOD_ODIN_SET "tiny-imagenet-resize"
#define OOD_ODIN_PLUGIN_SUMMARY "TinyImageNet (resize) dataset of ODIN"
#else
#error "define one of OOD_ODIN_LSUN_CROP, OOD_ODIN_LSUN_RESIZE, OOD_ODIN_TINY_IMAGENET_CROP, OOD_ODIN_TINY_IMAGENET_RESIZE"
#endif

namespace {

// What distinguishes one ODIN set from another.
struct OdinSet {
  const char* name;
  const char* summary;
  const char* archive;      // file name, also the Dropbox link's last part
  const char* dropbox_id;   // dropbox.com/s/raw/<id>/<archive>
  const char* md5;
  const char* top;          // the archive's top folder
  const char* folder;       // the images' folder, relative to root
  const char* provenance;   // what the images derive from and whose terms apply
};

constexpr const char* kFromLsun =
    "Derived from LSUN's scene images (collected from the web; LSUN states no licence: research use).";
constexpr const char* kFromTinyImagenet =
    "Derived from Tiny ImageNet, so ImageNet's terms apply (non-commercial research and education).";

constexpr OdinSet kOdinSets[] = {
    {"lsun-crop", "LSUN (crop), the ODIN test set: 10000 crops of LSUN scene images, OOD (label -1)",
     "LSUN.tar.gz", "fhtsw1m3qxlwj6h", "458a0a0ab8e5f1cb4516d7400568e460", "LSUN", "LSUN/test", kFromLsun},
    {"lsun-resize", "LSUN (resize), the ODIN test set: 10000 downsampled LSUN scene images, OOD (label -1)",
     "LSUN_resize.tar.gz", "moqh2wh8696c3yl", "278b7b31c8cb7e804a1465a8ce03a2dc", "LSUN_resize",
     "LSUN_resize/LSUN_resize", kFromLsun},
    {"tiny-imagenet-crop",
     "TinyImageNet (crop), the ODIN test set: 10000 crops of Tiny ImageNet images, OOD (label -1)",
     "Imagenet.tar.gz", "avgm2u562itwpkl", "7c0827e4246c3718a5ee076e999e52e5", "Imagenet", "Imagenet/test",
     kFromTinyImagenet},
    {"tiny-imagenet-resize",
     "TinyImageNet (resize), the ODIN test set: 10000 downsampled Tiny ImageNet images, OOD (label -1)",
     "Imagenet_resize.tar.gz", "kp3my3412u5k9rl", "0f9ff11d45babf2eff5fe12281d1ac31", "Imagenet_resize",
     "Imagenet_resize/Imagenet_resize", kFromTinyImagenet},
};

const OdinSet& odin_set(const std::string& name) {
  for (const OdinSet& set : kOdinSets)
    if (name == set.name) return set;
  throw std::logic_error("no ODIN set " + name);
}

ood::data::ImageFolderSet declare(const OdinSet& odin) {
  const std::string link = std::string("dropbox.com/s/raw/") + odin.dropbox_id + "/" + odin.archive;
  ood::data::ImageFolderSet set;
  set.info.name = odin.name;
  set.info.summary = odin.summary;
  set.info.paper = "Liang et al., Enhancing The Reliability of Out-of-distribution Image Detection in Neural "
                   "Networks (ODIN), ICLR 2018";
  set.info.year = 2018;
  set.info.doc =
      std::string("Samples: float32 [3, H, W] in [0, 1], converted to RGB as pytorch-ood does (the ODIN paper "
                  "gives 10000 images of 32x32; not checked here), label -1.\n"
                  "Layout: root/") +
      odin.folder +
      "/<file> (the archive's, as pytorch-ood's). Files are sorted; pytorch-ood keeps the filesystem's order.\n"
      "Source: ODIN's Dropbox link " + link + " (md5 " + odin.md5 + "). " + odin.provenance;
  set.root_doc = std::string("folder holding ") + odin.top + "/ (or where to download it)";
  set.download_doc = "download and extract the archive when the data is missing";
  ood::download::Resource archive;
  archive.file_name = odin.archive;
  archive.urls = {"https://www." + link};
  archive.md5 = odin.md5;
  set.source = [archive, odin](const std::filesystem::path&) {
    return ood::download::DataSource{odin.name, {archive}, {odin.folder}};
  };
  set.folder = odin.folder;
  // The ODIN paper gives 32x32 for every image; not checked on the archives, so no
  // input shape is promised (a wrong promise would fail at get()).
  set.mode = ood::io::ImageMode::Rgb;
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare(odin_set(OOD_ODIN_SET)));
}

}  // namespace

OOD_PLUGIN(OOD_ODIN_SET, OOD_ODIN_PLUGIN_SUMMARY, register_components)
