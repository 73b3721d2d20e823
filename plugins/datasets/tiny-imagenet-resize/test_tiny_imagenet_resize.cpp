// tiny-imagenet-resize on a miniature of the ODIN archive Imagenet_resize.tar.gz (Imagenet_resize/Imagenet_resize/ with numbered .jpg
// files), served through $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"tiny-imagenet-resize", "Imagenet_resize.tar.gz", "Imagenet_resize", "Imagenet_resize/Imagenet_resize"};

TEST(TinyImagenetResize, DownloadsTheArchiveAndReadsEveryImageAsRgbOod) {
  expect_reads_files_as_rgb_ood(kLayout, temp_dir("tiny_imagenet_resize"));
}

TEST(TinyImagenetResize, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("tiny_imagenet_resize_missing");
  expect_file_error("tiny-imagenet-resize", root, false,
                    {"tiny-imagenet-resize: data not found", (root / "Imagenet_resize/Imagenet_resize").string(),
                     "dropbox.com/s/raw/kp3my3412u5k9rl/Imagenet_resize.tar.gz", "0f9ff11d45babf2eff5fe12281d1ac31"});
}

TEST(TinyImagenetResize, AnEmptyFolderIsAnErrorNamingIt) {
  expect_empty_folder_named(kLayout, temp_dir("tiny_imagenet_resize_empty"));
}

}  // namespace
}  // namespace ood::test
