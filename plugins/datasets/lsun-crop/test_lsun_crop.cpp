// lsun-crop on a miniature of the ODIN archive LSUN.tar.gz (LSUN/test/ with numbered .jpg
// files), served through $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"lsun-crop", "LSUN.tar.gz", "LSUN", "LSUN/test"};

TEST(LsunCrop, DownloadsTheArchiveAndReadsEveryImageAsRgbOod) {
  expect_reads_files_as_rgb_ood(kLayout, temp_dir("lsun_crop"));
}

TEST(LsunCrop, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("lsun_crop_missing");
  expect_file_error("lsun-crop", root, false,
                    {"lsun-crop: data not found", (root / "LSUN/test").string(),
                     "dropbox.com/s/raw/fhtsw1m3qxlwj6h/LSUN.tar.gz", "458a0a0ab8e5f1cb4516d7400568e460"});
}

TEST(LsunCrop, AnEmptyFolderIsAnErrorNamingIt) {
  expect_empty_folder_named(kLayout, temp_dir("lsun_crop_empty"));
}

}  // namespace
}  // namespace ood::test
