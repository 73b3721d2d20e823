// Datasets over image files and image arrays (ood/data/image_files.hpp,
// ood/data/array_dataset.hpp): listing order and filters, symbolic links, torchvision's
// DatasetFolder layout, and samples as torchvision's ToTensor gives them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ood/core/data_loader.hpp"
#include "ood/data/array_dataset.hpp"
#include "ood/data/image_files.hpp"
#include "ood/error.hpp"
#include "ood/io/image.hpp"
#include "test_support.hpp"

namespace ood::data {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void touch(const fs::path& file, const std::string& content = "x") {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

// Paths relative to `root`, as generic strings, for readable comparisons.
std::vector<std::string> relative(const std::vector<fs::path>& files, const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.lexically_relative(root).generic_string());
  return out;
}

at::Tensor image_with_value(std::int64_t height, std::int64_t width, std::int64_t channels, int value) {
  return at::full({height, width, channels}, value, at::kByte);
}

template <class Call>
std::string file_error_of(Call&& call) {
  try {
    call();
  } catch (const FileError& e) {
    return e.what();
  }
  return "";
}

// ---- list_files -------------------------------------------------------------------------

TEST(ListFiles, SortedByByteOrderNotRecursiveByDefault) {
  const fs::path root = test::temp_dir("list-order");
  for (const char* name : {"b.jpg", "a.png", "A.JPG", "a-b.jpg", "a.png.txt", "_z.jpg", "sub/x.jpg"}) touch(root / name);
  EXPECT_THAT(relative(list_files(root), root), ElementsAre("A.JPG", "_z.jpg", "a-b.jpg", "a.png", "a.png.txt", "b.jpg"));
}

TEST(ListFiles, RecursiveOrderIsByteOrderOfTheWholePath) {
  const fs::path root = test::temp_dir("list-recursive");
  // '-' (0x2D) sorts before '/' (0x2F): "a-b/..." comes before "a/...", unlike an
  // element-wise path comparison.
  for (const char* name : {"a/x.jpg", "a-b/y.jpg", "a/deeper/z.jpg", "top.jpg", "a.jpg"}) touch(root / name);
  ListOptions options;
  options.recursive = true;
  EXPECT_THAT(relative(list_files(root, options), root),
              ElementsAre("a-b/y.jpg", "a.jpg", "a/deeper/z.jpg", "a/x.jpg", "top.jpg"));
}

TEST(ListFiles, ExtensionsCaseInsensitiveByDefault) {
  const fs::path root = test::temp_dir("list-extensions");
  for (const char* name : {"one.JPG", "two.jpeg", "three.Png", "four.gif", "five.jpg.bak", "six"}) touch(root / name);
  ListOptions options;
  options.extensions = {".jpg", ".jpeg", ".png"};
  EXPECT_THAT(relative(list_files(root, options), root), ElementsAre("one.JPG", "three.Png", "two.jpeg"));
  options.case_sensitive = true;
  EXPECT_THAT(relative(list_files(root, options), root), ElementsAre("two.jpeg"));
  options.case_sensitive = false;
  options.extensions = image_extensions();
  EXPECT_EQ(list_files(root, options).size(), 3u);
}

TEST(ListFiles, HiddenFilesAndFoldersSkipped) {
  const fs::path root = test::temp_dir("list-hidden");
  for (const char* name : {"visible.jpg", ".hidden.jpg", "._visible.jpg", ".cache/in_hidden.jpg", "sub/.x.jpg", "sub/y.jpg"})
    touch(root / name);
  ListOptions options;
  options.recursive = true;
  EXPECT_THAT(relative(list_files(root, options), root), ElementsAre("sub/y.jpg", "visible.jpg"));
  options.skip_hidden = false;
  EXPECT_THAT(relative(list_files(root, options), root),
              ElementsAre("._visible.jpg", ".cache/in_hidden.jpg", ".hidden.jpg", "sub/.x.jpg", "sub/y.jpg",
                          "visible.jpg"));
}

TEST(ListFiles, FollowsSymlinksWithoutLooping) {
  const fs::path root = test::temp_dir("list-symlinks");
  const fs::path outside = test::temp_dir("list-symlinks-outside");
  touch(root / "real/a.jpg");
  touch(outside / "b.jpg");
  fs::create_directory_symlink(outside, root / "linked");           // a folder elsewhere
  fs::create_directory_symlink(root, root / "real/loop");           // back to the root: a loop
  fs::create_directory_symlink(root / "real", root / "real_again");  // the same folder twice
  fs::create_symlink(root / "real/a.jpg", root / "file_link.jpg");   // a link to a file is a file
  fs::create_symlink(root / "nowhere.jpg", root / "dangling.jpg");   // skipped
  ListOptions options;
  options.recursive = true;
  // "real" and "real_again" are one folder: listed once, under the first name in
  // sorted order; the loop is not entered.
  EXPECT_THAT(relative(list_files(root, options), root), ElementsAre("file_link.jpg", "linked/b.jpg", "real/a.jpg"));
  options.recursive = false;
  EXPECT_THAT(relative(list_files(root, options), root), ElementsAre("file_link.jpg"));
}

TEST(ListFiles, NotADirectoryIsAFileError) {
  const fs::path root = test::temp_dir("list-errors");
  touch(root / "file.jpg");
  EXPECT_THAT(file_error_of([&] { list_files(root / "absent"); }), HasSubstr((root / "absent").string()));
  EXPECT_THAT(file_error_of([&] { list_files(root / "file.jpg"); }), HasSubstr("not a directory"));
  EXPECT_THAT(file_error_of([&] { list_subfolders(root / "absent"); }), HasSubstr("absent"));
}

TEST(ListFiles, ImageExtensionsAreTorchvisions) {
  EXPECT_THAT(image_extensions(), ElementsAre(".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"));
}

TEST(ListFiles, Subfolders) {
  const fs::path root = test::temp_dir("list-subfolders");
  for (const char* name : {"zebra/a", "cat/a", "Dog/a", ".git/a", "file.jpg"}) touch(root / name);
  fs::create_directory_symlink(root / "cat", root / "kitten");
  EXPECT_THAT(list_subfolders(root), ElementsAre("Dog", "cat", "kitten", "zebra"));
}

// ---- folder_classes -------------------------------------------------------------------------

TEST(FolderClasses, TorchvisionLayoutAndOrder) {
  const fs::path root = test::temp_dir("folder-classes");
  for (const char* name : {"dog/b.jpg", "dog/a.png", "cat/z.jpg", "cat/sub/x.jpg", "cat/a-b.jpg", "cat/notes.txt",
                           "cat/.DS_Store", "bird/nested/deep/1.JPG", "README.md"})
    touch(root / name);
  ListOptions options;
  options.extensions = image_extensions();
  const FolderClasses found = folder_classes(root, options);
  EXPECT_THAT(found.classes, ElementsAre("bird", "cat", "dog"));
  // torchvision's order: directories by path, then names, so "cat/z.jpg" (in "cat")
  // comes before "cat/sub/x.jpg" (in "cat/sub").
  EXPECT_THAT(relative(found.files, root),
              ElementsAre("bird/nested/deep/1.JPG", "cat/a-b.jpg", "cat/z.jpg", "cat/sub/x.jpg", "dog/a.png", "dog/b.jpg"));
  EXPECT_THAT(found.labels, ElementsAre(0, 1, 1, 1, 2, 2));
}

TEST(FolderClasses, NoClassOrEmptyClassNamesTheFolder) {
  const fs::path empty = test::temp_dir("folder-classes-none");
  touch(empty / "loose.jpg");
  ListOptions options;
  options.extensions = image_extensions();
  const std::string none = file_error_of([&] { folder_classes(empty, options); });
  EXPECT_THAT(none, HasSubstr(empty.string()));
  EXPECT_THAT(none, HasSubstr("no class folders"));

  const fs::path root = test::temp_dir("folder-classes-empty-class");
  touch(root / "full/a.jpg");
  touch(root / "empty/readme.txt");
  const std::string message = file_error_of([&] { folder_classes(root, options); });
  EXPECT_THAT(message, HasSubstr((root / "empty").string()));
  EXPECT_THAT(message, HasSubstr(".jpg"));
}

TEST(FolderClasses, FeedsImageFilesDataset) {
  const fs::path root = test::temp_dir("folder-classes-dataset");
  fs::create_directories(root / "a");  // write_png creates no folders
  fs::create_directories(root / "b");
  io::write_png(root / "b/one.png", image_with_value(4, 6, 3, 10));
  io::write_png(root / "a/two.png", image_with_value(4, 6, 1, 20));
  io::write_jpeg(root / "a/three.jpg", image_with_value(4, 6, 3, 200));
  ListOptions options;
  options.extensions = image_extensions();
  FolderClasses found = folder_classes(root, options);
  ImageFilesOptions dataset_options;
  dataset_options.dataset = "my-folder";
  dataset_options.mode = io::ImageMode::Rgb;
  dataset_options.classes = found.classes;
  dataset_options.input_shape = {3, 4, 6};
  auto dataset = image_files_dataset(found.files, found.labels, dataset_options);
  ASSERT_EQ(dataset->size(), 3);
  EXPECT_THAT(dataset->info().classes, ElementsAre("a", "b"));
  EXPECT_TRUE(at::equal(dataset->labels(), at::tensor({0, 0, 1}, at::kLong)));
  const Sample first = dataset->get(0);  // a/three.jpg
  EXPECT_EQ(first.input.sizes(), (std::vector<std::int64_t>{3, 4, 6}));
  EXPECT_NEAR(first.input.mean().item<double>(), 200.0 / 255, 2.0 / 255);
  const Sample second = dataset->get(1);  // a/two.png, grey repeated to RGB
  EXPECT_TRUE(at::allclose(second.input, at::full({3, 4, 6}, 20.0f / 255)));
  EXPECT_EQ(dataset->get(2).label(), 1);
}

// ---- image_files_dataset ------------------------------------------------------------------------

std::shared_ptr<Dataset> three_image_dataset(const fs::path& dir, io::ImageMode mode = io::ImageMode::Keep,
                                             std::vector<std::int64_t> shape = {}) {
  io::write_png(dir / "0.png", image_with_value(5, 7, 3, 51));
  io::write_png(dir / "1.png", image_with_value(5, 7, 1, 102));
  io::write_jpeg(dir / "2.jpg", image_with_value(5, 7, 3, 153));
  ImageFilesOptions options;
  options.dataset = "three";
  options.mode = mode;
  options.classes = {"zero", "one"};
  options.input_shape = std::move(shape);
  options.folder = dir;
  return image_files_dataset({dir / "0.png", dir / "1.png", dir / "2.jpg"}, {0, 1, -1}, options);
}

TEST(ImageFilesDataset, GetDecodesToTensorWithLabel) {
  const fs::path dir = test::temp_dir("image-files-get");
  auto dataset = three_image_dataset(dir);
  ASSERT_EQ(dataset->size(), 3);
  for (std::int64_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const Sample sample = dataset->get(i);
    const fs::path file = dir / (i == 2 ? "2.jpg" : std::to_string(i) + ".png");
    EXPECT_TRUE(at::equal(sample.input, io::image_to_tensor(io::read_image(file))));
    EXPECT_EQ(sample.input.scalar_type(), at::kFloat);
    EXPECT_EQ(sample.target.dim(), 0);
    EXPECT_EQ(sample.target.scalar_type(), at::kLong);
  }
  EXPECT_EQ(dataset->get(1).input.size(0), 1);  // Keep: grey stays 1 channel
  EXPECT_EQ(dataset->get(2).label(), -1);
  const DatasetInfo info = dataset->info();
  EXPECT_THAT(info.classes, ElementsAre("zero", "one"));
  EXPECT_TRUE(info.input_shape.empty());
  EXPECT_EQ(info.task, Task::Classification);
  EXPECT_EQ(info.modality, Modality::Image);
}

TEST(ImageFilesDataset, ModesAndDeclaredShape) {
  const fs::path dir = test::temp_dir("image-files-modes");
  auto rgb = three_image_dataset(dir, io::ImageMode::Rgb, {3, 5, 7});
  for (std::int64_t i = 0; i < 3; ++i) EXPECT_EQ(rgb->get(i).input.sizes(), (std::vector<std::int64_t>{3, 5, 7}));
  EXPECT_EQ(rgb->info().input_shape, (std::vector<std::int64_t>{3, 5, 7}));
  auto grey = three_image_dataset(dir, io::ImageMode::Grey);
  EXPECT_EQ(grey->get(0).input.size(0), 1);
  // A declared shape that one image does not have: named, not a stack error later.
  auto wrong = three_image_dataset(dir, io::ImageMode::Rgb, {3, 5, 8});
  const std::string message = file_error_of([&] { wrong->get(1); });
  EXPECT_THAT(message, HasSubstr("three"));
  EXPECT_THAT(message, HasSubstr((dir / "1.png").string()));
  EXPECT_THAT(message, HasSubstr("[3, 5, 8]"));
}

TEST(ImageFilesDataset, LabelsWithoutDecoding) {
  const fs::path dir = test::temp_dir("image-files-labels");
  auto dataset = three_image_dataset(dir);
  fs::remove(dir / "0.png");  // labels() must not need the files
  fs::remove(dir / "2.jpg");
  const at::Tensor labels = dataset->labels();
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(labels, at::tensor({0, 1, -1}, at::kLong)));
}

TEST(ImageFilesDataset, IndexIsBoundsChecked) {
  auto dataset = three_image_dataset(test::temp_dir("image-files-bounds"));
  EXPECT_THROW(dataset->get(-1), InvalidArgument);
  EXPECT_THROW(dataset->get(3), InvalidArgument);
  try {
    dataset->get(3);
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("three"));
  }
}

TEST(ImageFilesDataset, DecodeErrorNamesDatasetAndFile) {
  const fs::path dir = test::temp_dir("image-files-errors");
  auto dataset = three_image_dataset(dir);
  touch(dir / "1.png", "not an image at all");
  const std::string corrupt = file_error_of([&] { dataset->get(1); });
  EXPECT_THAT(corrupt, HasSubstr("three: "));
  EXPECT_THAT(corrupt, HasSubstr((dir / "1.png").string()));
  fs::remove(dir / "2.jpg");
  EXPECT_THAT(file_error_of([&] { dataset->get(2); }), HasSubstr((dir / "2.jpg").string()));
  EXPECT_NO_THROW(dataset->get(0));
}

TEST(ImageFilesDataset, EmptyListAndLabelMismatch) {
  ImageFilesOptions options;
  options.dataset = "textures";
  options.folder = "/data/dtd/images";
  const std::string message = file_error_of([&] { image_files_dataset({}, {}, options); });
  EXPECT_THAT(message, HasSubstr("textures"));
  EXPECT_THAT(message, HasSubstr("/data/dtd/images"));
  EXPECT_THROW(image_files_dataset({"a.png", "b.png"}, {0}, options), InvalidArgument);
}

// Loader threads call get() at once: the batches match a sequential pass.
TEST(ImageFilesDataset, ParallelLoaderMatchesSequentialGets) {
  const fs::path dir = test::temp_dir("image-files-loader");
  std::vector<fs::path> files;
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 24; ++i) {
    const fs::path file = dir / ("img" + std::to_string(100 + i) + (i % 2 ? ".jpg" : ".png"));
    at::Tensor image = image_with_value(8, 8, 3, 10 * i);
    image.select(2, 1).fill_(255 - 10 * i);
    if (i % 2)
      io::write_jpeg(file, image);
    else
      io::write_png(file, image);
    files.push_back(file);
    labels.push_back(i % 3);
  }
  ImageFilesOptions options;
  options.dataset = "loader";
  auto dataset = image_files_dataset(files, labels, options);
  core::LoaderOptions loader_options;
  loader_options.batch_size = 5;
  loader_options.workers = 2;
  loader_options.name = "loader";
  core::DataLoader loader(dataset, {}, loader_options);
  std::int64_t seen = 0;
  while (auto batch = loader.next()) {
    for (std::size_t k = 0; k < batch->indices.size(); ++k) {
      const Sample expected = dataset->get(batch->indices[k]);
      EXPECT_TRUE(at::equal(batch->inputs[static_cast<std::int64_t>(k)], expected.input));
      EXPECT_EQ(batch->targets[static_cast<std::int64_t>(k)].item<std::int64_t>(), expected.label());
      ++seen;
    }
  }
  EXPECT_EQ(seen, 24);
}

// ---- array_dataset ---------------------------------------------------------------------------

at::Tensor counting_images(std::vector<std::int64_t> shape) {
  const std::int64_t n = c10::multiply_integers(shape);
  return at::arange(n, at::kInt).remainder(256).to(at::kByte).reshape(shape);
}

TEST(ArrayDataset, NhwcUint8AsToTensor) {
  const at::Tensor images = counting_images({4, 5, 6, 3});
  ArrayDatasetOptions options;
  options.dataset = "cifar";
  options.classes = {"a", "b", "c"};
  auto dataset = array_dataset(images, at::tensor({2, 0, 1, 2}, at::kInt), options);
  ASSERT_EQ(dataset->size(), 4);
  for (std::int64_t i = 0; i < 4; ++i) {
    const Sample sample = dataset->get(i);
    EXPECT_EQ(sample.input.sizes(), (std::vector<std::int64_t>{3, 5, 6}));
    EXPECT_TRUE(sample.input.is_contiguous());
    EXPECT_TRUE(at::equal(sample.input, images[i].permute({2, 0, 1}).to(at::kFloat) / 255));
    EXPECT_EQ(sample.target.dim(), 0);
    EXPECT_EQ(sample.target.scalar_type(), at::kLong);
  }
  EXPECT_EQ(dataset->get(0).label(), 2);
  EXPECT_TRUE(at::equal(dataset->labels(), at::tensor({2, 0, 1, 2}, at::kLong)));
  EXPECT_EQ(dataset->info().input_shape, (std::vector<std::int64_t>{3, 5, 6}));
  EXPECT_THAT(dataset->info().classes, ElementsAre("a", "b", "c"));
}

TEST(ArrayDataset, NchwAndNhwLayouts) {
  const at::Tensor nchw = counting_images({2, 3, 4, 5});
  ArrayDatasetOptions options;
  options.dataset = "nchw";
  options.layout = ArrayLayout::NCHW;
  auto dataset = array_dataset(nchw, at::tensor({0, 1}, at::kLong), options);
  EXPECT_TRUE(at::equal(dataset->get(1).input, nchw[1].to(at::kFloat) / 255));
  EXPECT_EQ(dataset->info().input_shape, (std::vector<std::int64_t>{3, 4, 5}));

  const at::Tensor nhw = counting_images({3, 7, 8});
  options.layout = ArrayLayout::NHW;
  auto grey = array_dataset(nhw, at::tensor({0, 1, 2}, at::kLong), options);
  EXPECT_EQ(grey->get(2).input.sizes(), (std::vector<std::int64_t>{1, 7, 8}));
  EXPECT_TRUE(at::equal(grey->get(2).input[0], nhw[2].to(at::kFloat) / 255));
  EXPECT_EQ(grey->info().input_shape, (std::vector<std::int64_t>{1, 7, 8}));
}

TEST(ArrayDataset, FloatImagesAndScale) {
  const at::Tensor images = at::rand({2, 4, 4, 1}, at::kDouble);
  ArrayDatasetOptions options;
  options.scale = 1.0;
  auto dataset = array_dataset(images, at::tensor({0, 0}, at::kLong), options);
  EXPECT_EQ(dataset->get(0).input.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(dataset->get(0).input, images[0].permute({2, 0, 1}).to(at::kFloat)));
  // A non-contiguous (transposed) array is accepted.
  const at::Tensor transposed = counting_images({4, 4, 2, 1}).transpose(0, 2);  // [2, 4, 4, 1]
  options.scale = 255.0;
  auto from_view = array_dataset(transposed, at::tensor({1, 1}, at::kLong), options);
  EXPECT_TRUE(at::equal(from_view->get(1).input, transposed[1].permute({2, 0, 1}).to(at::kFloat) / 255));
}

TEST(ArrayDataset, ShapeErrorsNameTheDataset) {
  ArrayDatasetOptions options;
  options.dataset = "svhn";
  const auto labels = at::tensor({0, 1}, at::kLong);
  const auto message = [&](const at::Tensor& images, const at::Tensor& l, ArrayLayout layout) {
    options.layout = layout;
    return file_error_of([&] { array_dataset(images, l, options); });
  };
  EXPECT_THAT(message(counting_images({2, 4, 4}), labels, ArrayLayout::NHWC), HasSubstr("svhn"));
  EXPECT_THAT(message(counting_images({2, 4, 4}), labels, ArrayLayout::NHWC), HasSubstr("NHWC"));
  EXPECT_THAT(message(counting_images({2, 4, 4, 3}), labels, ArrayLayout::NHW), HasSubstr("NHW"));
  EXPECT_THAT(message(counting_images({3, 4, 4, 3}), labels, ArrayLayout::NHWC), HasSubstr("2 labels for 3 images"));
  EXPECT_THAT(message(counting_images({2, 4, 4, 3}), at::zeros({2, 1}, at::kLong), ArrayLayout::NHWC),
              HasSubstr("labels"));
  EXPECT_THAT(message(counting_images({2, 4, 4, 3}), at::zeros({2}), ArrayLayout::NHWC), HasSubstr("integer"));
  EXPECT_THAT(message(counting_images({2, 4, 4, 3}).to(at::kShort), labels, ArrayLayout::NHWC), HasSubstr("uint8"));
  EXPECT_THAT(message(counting_images({0, 4, 4, 3}), at::zeros({0}, at::kLong), ArrayLayout::NHWC),
              HasSubstr("no images"));
}

TEST(ArrayDataset, IndexIsBoundsChecked) {
  auto dataset = array_dataset(counting_images({2, 2, 2, 1}), at::tensor({0, 1}, at::kLong), {});
  EXPECT_THROW(dataset->get(2), InvalidArgument);
  EXPECT_THROW(dataset->get(-1), InvalidArgument);
}

}  // namespace
}  // namespace ood::data
