// imagenet-a on a miniature of the real archive (imagenet-a.tar holding
// imagenet-a/README.txt and imagenet-a/<wnid>/<score>_<name>_<score>.jpg), served through
// $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"imagenet-a", "imagenet-a.tar", "imagenet-a", "imagenet-a"};

TEST(ImageNetA, DownloadsTheArchiveAndLabelsByClassFolder) {
  // File names as the real archive's.
  expect_reads_class_folders(kLayout, {"0.000001_shark _ stingray_0.42.JPEG", "0.000116_digital clock _ stingray_0.86.jpg", "0.000034_goldfinch _ goldfinch_0.77.jpg"},
                             temp_dir("imagenet_a"));
}

TEST(ImageNetA, MissingDataNamesTheArchiveUrlAndChecksum) {
  const fs::path root = temp_dir("imagenet_a_missing");
  expect_file_error("imagenet-a", root, false,
                    {"imagenet-a: data not found", (root / "imagenet-a").string(),
                     "https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar", "c3e55429088dc681f30d81f4726b6595"});
}

TEST(ImageNetA, AClassWithoutImagesIsNamed) {
  expect_class_without_images_named(kLayout, temp_dir("imagenet_a_empty_class"));
}

}  // namespace
}  // namespace ood::test
