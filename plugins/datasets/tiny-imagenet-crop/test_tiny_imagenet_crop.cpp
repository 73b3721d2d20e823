// tiny-imagenet-crop on a miniature of the ODIN archive Imagenet.tar.gz (Imagenet/test/ with numbered .jpg
// files), served through $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"tiny-imagenet-crop", "Imagenet.tar.gz", "Imagenet", "Imagenet/test"};

TEST(TinyImagenetCrop, DownloadsTheArchiveAndReadsEveryImageAsRgbOod) {
  expect_reads_files_as_rgb_ood(kLayout, temp_dir("tiny_imagenet_crop"));
}

TEST(TinyImagenetCrop, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("tiny_imagenet_crop_missing");
  expect_file_error("tiny-imagenet-crop", root, false,
                    {"tiny-imagenet-crop: data not found", (root / "Imagenet/test").string(),
                     "dropbox.com/s/raw/avgm2u562itwpkl/Imagenet.tar.gz", "7c0827e4246c3718a5ee076e999e52e5"});
}

TEST(TinyImagenetCrop, AnEmptyFolderIsAnErrorNamingIt) {
  expect_empty_folder_named(kLayout, temp_dir("tiny_imagenet_crop_empty"));
}

}  // namespace
}  // namespace ood::test
