// lsun-resize on a miniature of the ODIN archive LSUN_resize.tar.gz (LSUN_resize/LSUN_resize/ with numbered .jpg
// files), served through $OOD_RESOURCES.
#include "folder_set_test.hpp"

namespace ood::test {
namespace {

using namespace folder_set;

const Layout kLayout{"lsun-resize", "LSUN_resize.tar.gz", "LSUN_resize", "LSUN_resize/LSUN_resize"};

TEST(LsunResize, DownloadsTheArchiveAndReadsEveryImageAsRgbOod) {
  expect_reads_files_as_rgb_ood(kLayout, temp_dir("lsun_resize"));
}

TEST(LsunResize, MissingDataNamesTheFolderTheUrlAndTheChecksum) {
  const fs::path root = temp_dir("lsun_resize_missing");
  expect_file_error("lsun-resize", root, false,
                    {"lsun-resize: data not found", (root / "LSUN_resize/LSUN_resize").string(),
                     "dropbox.com/s/raw/moqh2wh8696c3yl/LSUN_resize.tar.gz", "278b7b31c8cb7e804a1465a8ce03a2dc"});
}

TEST(LsunResize, AnEmptyFolderIsAnErrorNamingIt) {
  expect_empty_folder_named(kLayout, temp_dir("lsun_resize_empty"));
}

}  // namespace
}  // namespace ood::test
