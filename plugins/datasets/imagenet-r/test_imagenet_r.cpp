// imagenet-r on a miniature of the real archive (imagenet-r.tar holding
// imagenet-r/README.txt and imagenet-r/<wnid>/<file>.jpg), served through
// $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"imagenet-r", "imagenet-r.tar", "imagenet-r", "imagenet-r"};

TEST(ImageNetR, DownloadsTheArchiveAndLabelsByClassFolder) {
  // File names as the real archive's.
  expect_reads_class_folders(kLayout, {"art_0.JPEG", "cartoon_12.jpg", "sketch_3.jpg"},
                             temp_dir("imagenet_r"));
}

TEST(ImageNetR, MissingDataNamesTheArchiveUrlAndChecksum) {
  const fs::path root = temp_dir("imagenet_r_missing");
  expect_file_error("imagenet-r", root, false,
                    {"imagenet-r: data not found", (root / "imagenet-r").string(),
                     "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar", "a61312130a589d0ca1a8fca1f2bd3337"});
}

TEST(ImageNetR, AClassWithoutImagesIsNamed) {
  expect_class_without_images_named(kLayout, temp_dir("imagenet_r_empty_class"));
}

}  // namespace
}  // namespace ood::test
