// Feature visualizations, one of the two PixMix mixing sets (Hendrycks et al., 2022):
// visualisations of first-layer features, mixed into training images by PixMix (see the
// pix-mix augmentation).
//
// As pytorch-ood's FeatureVisDataset: fractals_and_fvis.tar (shared with fractals) is
// extracted into root and every file of
// root/fractals_and_fvis/first_layers_resized256_onevis/images/ is a sample, as stored,
// label -1. Files are sorted (pytorch-ood's order depends on the filesystem). The
// archive is on Google Drive, which ood cannot download from (a confirmation page stands
// before large files): the user puts it into root and `download: true` checks and
// extracts it.
#include "ood/data/image_folder_set.hpp"

namespace {

ood::data::ImageFolderSet declare() {
  ood::data::ImageFolderSet set;
  set.info.name = "feature-visualizations";
  set.info.summary = "PixMix feature visualizations: the images PixMix mixes into training images (label -1)";
  set.info.paper = "Hendrycks et al., PixMix: Dreamlike Pictures Comprehensively Improve Safety Measures, CVPR 2022";
  set.info.year = 2022;
  set.info.doc =
      "Samples: float32 [C, H, W] in [0, 1] as stored (count, size and format not checked here; the folder "
      "name suggests 256x256; use to-rgb and resize to batch them), label -1.\n"
      "Layout: root/fractals_and_fvis/first_layers_resized256_onevis/images/<file> (the archive's, as "
      "pytorch-ood's; the same archive holds fractals). Files are sorted; pytorch-ood keeps the filesystem's "
      "order.\n"
      "Source: PixMix's Google Drive file 1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA (fractals_and_fvis.tar, md5 "
      "3619fb7e2c76130749d97913fdd3ab27, checked when extracted). Google Drive cannot be downloaded from "
      "automatically: put the tar into root and set download to true to extract it. No licence stated for "
      "the images (the PixMix code is MIT): research use.";
  set.root_doc = "folder holding fractals_and_fvis/ (or the placed fractals_and_fvis.tar)";
  set.download_doc =
      "check and extract fractals_and_fvis.tar placed in root when the data is missing "
      "(it cannot be downloaded automatically)";
  set.source = [](const std::filesystem::path& root) {
    ood::download::Resource archive;
    archive.file_name = "fractals_and_fvis.tar";
    // No URL: Google Drive only.
    archive.md5 = "3619fb7e2c76130749d97913fdd3ab27";
    archive.manual = ood::data::google_drive_manual(
        "1qC2gIUx9ARU7zhgI4IwGD3YcFhm8J4cA", ", linked from the PixMix README github.com/andyzoujm/pixmix", root,
        "checks and extracts it there");
    return ood::download::DataSource{
        "feature-visualizations", {archive}, {"fractals_and_fvis/first_layers_resized256_onevis/images"}};
  };
  set.folder = "fractals_and_fvis/first_layers_resized256_onevis/images";
  return set;
}

void register_components(ood::Registrar& registrar) {
  ood::data::add_image_folder_set(registrar, declare());
}

}  // namespace

OOD_PLUGIN("feature-visualizations", "PixMix feature visualizations mixing set", register_components)
