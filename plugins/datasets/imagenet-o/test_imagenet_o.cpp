// imagenet-o on a miniature of the real archive (imagenet-o.tar holding
// imagenet-o/README.txt and imagenet-o/<wnid>/<file>.jpg), served through
// $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"imagenet-o", "imagenet-o.tar", "imagenet-o", "imagenet-o"};

TEST(ImageNetO, DownloadsTheArchiveAndLabelsByClassFolder) {
  // File names as the real archive's.
  expect_reads_class_folders(kLayout, {"ILSVRC2012_val_00000007.JPEG", "ILSVRC2012_val_00000101.jpg", "lost_and_found_0000.jpg"},
                             temp_dir("imagenet_o"));
}

TEST(ImageNetO, MissingDataNamesTheArchiveUrlAndChecksum) {
  const fs::path root = temp_dir("imagenet_o_missing");
  expect_file_error("imagenet-o", root, false,
                    {"imagenet-o: data not found", (root / "imagenet-o").string(),
                     "https://people.eecs.berkeley.edu/~hendrycks/imagenet-o.tar", "86bd7a50c1c4074fb18fc5f219d6d50b"});
}

TEST(ImageNetO, AClassWithoutImagesIsNamed) {
  expect_class_without_images_named(kLayout, temp_dir("imagenet_o_empty_class"));
}

}  // namespace
}  // namespace ood::test
