#pragma once
// Tests of image datasets, image-folder sets (ood/data/image_folder_set.hpp) above all:
// images with known pixels and the writers that put them into miniature trees (shared by
// every image dataset's test), archived and served through $OOD_RESOURCES, and the checks
// a family of such sets shares. Each dataset's test still builds its own real layout; the family
// checks (ODIN sets, ImageNet-A/O/R) take only where that layout puts the images.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "miniature_archives.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::test::folder_set {

namespace fs = std::filesystem;

/// An h x w RGB image whose pixel (y, x) is (10 * index, y, x): images differ by index.
inline at::Tensor pattern(std::int64_t index, std::int64_t h, std::int64_t w) {
  at::Tensor img = at::zeros({h, w, 3}, at::kByte);
  img.select(2, 0).fill_(10 * index);
  img.select(2, 1).copy_(at::arange(h).unsqueeze(1).expand({h, w}));
  img.select(2, 2).copy_(at::arange(w).unsqueeze(0).expand({h, w}));
  return img;
}

/// What a dataset should return for the [H, W, C] bytes `hwc`.
inline at::Tensor as_input(const at::Tensor& hwc) { return hwc.permute({2, 0, 1}).to(at::kFloat) / 255; }

/// io::write_png / write_jpeg into a folder created first. PNGs named .jpg keep exact
/// pixel values (the format is told by the content).
inline void put_png(const fs::path& file, const at::Tensor& hwc) {
  fs::create_directories(file.parent_path());
  io::write_png(file, hwc);
}
inline void put_jpeg(const fs::path& file, const at::Tensor& hwc) {
  fs::create_directories(file.parent_path());
  io::write_jpeg(file, hwc);
}

/// A text file, its folder created first.
inline void put_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

inline std::string params(const fs::path& root, bool download) {
  return R"({"root": ")" + root.string() + R"(", "download": )" + (download ? "true" : "false") + "}";
}

/// Serves `archive` (already written), constructs `dataset` with download: true in
/// `root`, then checks that the prepared root is reused: a second construction without
/// the archive and without download has the same size, and the archive was fetched once.
inline std::shared_ptr<Dataset> download_and_reopen(const std::string& dataset, const fs::path& archive,
                                                    const fs::path& root) {
  ServedResources served(archive.parent_path() / "server");
  served.serve(archive);
  auto set = make_dataset(dataset, params(root, true));
  fs::remove(root / archive.filename());
  EXPECT_EQ(make_dataset(dataset, params(root, false))->size(), set->size());
  EXPECT_EQ(served.requests(archive.filename().string()), 1);
  return set;
}

/// Constructing `dataset` in `root` with `download` fails with a FileError whose message
/// contains every one of `expected`.
inline void expect_file_error(const std::string& dataset, const fs::path& root, bool download,
                              const std::vector<std::string>& expected) {
  try {
    make_dataset(dataset, params(root, download));
    ADD_FAILURE() << dataset << ": no error";
  } catch (const FileError& e) {
    const std::string m = e.what();
    for (const auto& part : expected) EXPECT_NE(m.find(part), std::string::npos) << part << " not in: " << m;
  }
}

/// Where a set keeps its images: `archive` (e.g. "LSUN.tar.gz") holds `top`/ ("LSUN"),
/// and the images are in root/`folder` ("LSUN/test").
struct Layout {
  std::string dataset;
  std::string archive;
  std::string top;
  std::string folder;
};

/// The ODIN sets (lsun-crop, lsun-resize, tiny-imagenet-crop, -resize): every file of
/// the folder, sorted by name, converted to RGB, label -1.
inline void expect_reads_files_as_rgb_ood(const Layout& layout, const fs::path& dir) {
  const fs::path tree = dir / "tree";
  const fs::path images = tree / layout.folder;
  put_png(images / "10.jpg", pattern(2, 4, 6));
  const at::Tensor grey = at::arange(12, at::kByte).reshape({3, 4, 1}) * 20;
  put_png(images / "2.jpg", grey);
  const at::Tensor rgba = at::cat({pattern(3, 5, 5), at::full({5, 5, 1}, 7, at::kByte)}, 2);
  put_png(images / "3.jpg", rgba);
  put_jpeg(images / "1.jpg", pattern(1, 32, 32));
  write_archive(dir / layout.archive, tree_entries(tree, layout.top));

  auto dataset = download_and_reopen(layout.dataset, dir / layout.archive, dir / "root");
  ASSERT_EQ(dataset->size(), 4);
  EXPECT_TRUE(dataset->labels().equal(at::full({4}, -1, at::kLong)));
  EXPECT_TRUE(dataset->info().input_shape.empty());
  // Sorted by name: 1.jpg, 10.jpg, 2.jpg, 3.jpg.
  const Sample jpeg = dataset->get(0);
  EXPECT_EQ(jpeg.input.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(jpeg.label(), -1);
  EXPECT_TRUE(all_close(jpeg.input, as_input(pattern(1, 32, 32)), 0, 8.0 / 255));  // lossy
  EXPECT_TRUE(dataset->get(1).input.equal(as_input(pattern(2, 4, 6))));
  // Grey is repeated over three channels and alpha is dropped, as PIL's convert("RGB").
  EXPECT_TRUE(dataset->get(2).input.equal(as_input(grey.expand({3, 4, 3}))));
  EXPECT_TRUE(dataset->get(3).input.equal(as_input(pattern(3, 5, 5))));
}

/// An existing but empty image folder is an error naming the dataset and the folder.
inline void expect_empty_folder_named(const Layout& layout, const fs::path& root) {
  fs::create_directories(root / layout.folder);
  expect_file_error(layout.dataset, root, false, {layout.dataset, (root / layout.folder).string()});
}

/// An h x w image with `channels` channels whose pixel (y, x) is (10 * index + y + x) in
/// every channel but the last, which holds 2 * x.
inline at::Tensor ramp(std::int64_t index, std::int64_t h, std::int64_t w, std::int64_t channels = 3) {
  at::Tensor img = at::zeros({h, w, channels}, at::kByte);
  const at::Tensor values = at::arange(h).unsqueeze(1) + at::arange(w).unsqueeze(0) + 10 * index;
  for (std::int64_t c = 0; c + 1 < channels; ++c) img.select(2, c).copy_(values);
  img.select(2, channels - 1).copy_((2 * at::arange(w)).unsqueeze(0).expand({h, w}));
  return img;
}

/// The file names a class-folder set's miniature uses: two in the first class, one in the
/// second, each as the real archive names them.
struct ClassFolderNames {
  std::string first_a;   // ends in .JPEG, sorts first in class 0
  std::string first_b;   // ends in .jpg, class 0
  std::string second;    // ends in .jpg, class 1
};

/// ImageNet-A/O/R: torchvision's DatasetFolder over <top>/<wnid>/, files ending exactly in
/// .jpg or .JPEG, decoded as stored, label = class index.
inline void expect_reads_class_folders(const Layout& layout, const ClassFolderNames& names, const fs::path& dir) {
  const fs::path tree = dir / "tree";
  const fs::path top = tree / layout.folder;
  fs::create_directories(top);
  // The real archive's class list, a file beside the class folders: no sample.
  std::ofstream(top / "README.txt") << "n01498041 stingray\nn01531178 goldfinch\n";
  // Written in reverse order: classes and files are sorted.
  put_png(top / "n01531178" / names.second, ramp(3, 4, 6));
  put_png(top / "n01498041" / names.first_b, ramp(2, 5, 3, 1));  // grey
  put_png(top / "n01498041" / names.first_a, ramp(1, 3, 4));
  // Not samples for pytorch-ood's case-sensitive ".jpg"/".JPEG" test:
  put_png(top / "n01498041/upper.JPG", ramp(9, 2, 2));
  put_png(top / "n01498041/lower.jpeg", ramp(9, 2, 2));
  put_png(top / "n01498041/other.png", ramp(9, 2, 2));
  write_archive(dir / layout.archive, tree_entries(tree, layout.top));

  auto set = download_and_reopen(layout.dataset, dir / layout.archive, dir / "root");
  ASSERT_EQ(set->size(), 3);
  EXPECT_TRUE(set->labels().equal(at::tensor({0, 0, 1}, at::kLong)));
  EXPECT_EQ(set->info().classes, (std::vector<std::string>{"n01498041", "n01531178"}));
  EXPECT_EQ(set->info().task, Task::Classification);
  const Sample first = set->get(0);
  EXPECT_TRUE(first.input.equal(as_input(ramp(1, 3, 4))));
  EXPECT_EQ(first.label(), 0);
  const Sample grey = set->get(1);  // kept as stored: one channel, no RGB conversion
  EXPECT_EQ(grey.input.sizes(), (std::vector<std::int64_t>{1, 5, 3}));
  EXPECT_TRUE(grey.input.equal(as_input(ramp(2, 5, 3, 1))));
  const Sample third = set->get(2);
  EXPECT_TRUE(third.input.equal(as_input(ramp(3, 4, 6))));
  EXPECT_EQ(third.label(), 1);
}

/// A class folder without samples (only a .jpeg) is an error naming the dataset and the
/// class.
inline void expect_class_without_images_named(const Layout& layout, const fs::path& root) {
  put_png(root / layout.folder / "n01498041/a.jpg", ramp(0, 2, 2));
  put_png(root / layout.folder / "n01531178/only.jpeg", ramp(0, 2, 2));  // not a sample
  expect_file_error(layout.dataset, root, false, {layout.dataset + ": ", "n01531178"});
}

}  // namespace ood::test::folder_set
