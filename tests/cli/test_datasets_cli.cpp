// The image datasets from the command line: `ood data fetch` downloads, verifies and
// extracts through $OOD_RESOURCES; a pipeline trains the demo's WideResNet (3 input
// channels) on a miniature CIFAR-10 and evaluates it against several miniature OOD sets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "cli_support.hpp"
#include "miniature_archives.hpp"
#include "npy_writer.hpp"
#include "ood/io/image.hpp"
#include "python2_pickle.hpp"

namespace ood::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void write_file(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

// n images of 3072 bytes whose every byte is a pseudo-random function of (seed, i).
std::string pixels(int n, int seed) {
  std::string p;
  for (int i = 0; i < n * 3072; ++i) p += static_cast<char>((i * 7919 + seed * 104729) % 251);
  return p;
}

// Miniature trees of several sets under `root`, in their real layouts (extracted).
void write_miniature_trees(const fs::path& root) {
  const std::vector<std::string> names = {"airplane", "automobile", "bird", "cat", "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};
  for (int b = 1; b <= 5; ++b)
    write_file(root / "cifar-10-batches-py" / ("data_batch_" + std::to_string(b)),
               cifar_batch("labels", {b % 10, (b + 3) % 10, (b + 6) % 10, (b + 1) % 10}, pixels(4, b)));
  write_file(root / "cifar-10-batches-py/test_batch",
             cifar_batch("labels", {0, 1, 2, 3, 4, 5, 6, 7}, pixels(8, 99)));
  write_file(root / "cifar-10-batches-py/batches.meta", name_list("label_names", names));
  std::vector<std::int64_t> labels(10, 3);
  write_file(root / "CIFAR-10-C/labels.npy", npy_bytes("<i8", {10}, int64_bytes(labels)));
  write_file(root / "CIFAR-10-C/fog.npy", npy_bytes("|u1", {10, 32, 32, 3}, pixels(10, 7)));
  write_file(root / "300K_random_images.npy", npy_bytes("|u1", {6, 32, 32, 3}, pixels(6, 11)));
  for (int i = 0; i < 5; ++i) {
    at::Tensor img = at::full({40 + i, 50, 3}, 20 * i, at::kByte);
    io::write_jpeg(root / "dtd/images" / (i % 2 ? "banded" : "dotted") / ("img_" + std::to_string(i) + ".jpg"), img);
  }
}

TEST(DatasetsCli, PipelineEvaluatesAgainstSeveralImageSets) {
  const fs::path dir = temp_dir("datasets_cli_pipeline");
  write_miniature_trees(dir / "data");
  const std::string root = (dir / "data").string();
  const json pipeline = {
      {"seed", 1},
      {"model", {{"plugin", "wide-resnet"},
                 {"params", {{"num_classes", 10}, {"depth", 10}, {"widen_factor", 1}, {"in_channels", 3}}}}},
      {"train", {{"data", {{"plugin", "cifar10"}, {"params", {{"root", root}}}}},
                 {"transforms", {{{"plugin", "random-horizontal-flip"}}}},
                 {"epochs", 1},
                 {"batch_size", 8}}},
      {"data",
       {{"in", {{"plugin", "cifar10"}, {"params", {{"root", root}, {"train", false}}}}},
        {"out",
         {{"cifar10-c-fog", {{"plugin", "cifar10-c"}, {"params", {{"root", root}, {"subset", "fog"}}}}},
          {"tiny-images", {{"plugin", "tiny-images-300k"}, {"params", {{"root", root}}}}},
          {"textures", {{"plugin", "textures"}, {"params", {{"root", root}}}}}}},
        {"transforms",
         {{{"plugin", "resize"}, {"params", {{"size", {32, 32}}}}},
          {{"plugin", "normalize"}, {"params", {{"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.25, 0.25}}}}}}}}},
      {"detectors", {{"msp", {{"plugin", "max-softmax"}}}, {"energy", {{"plugin", "energy-based"}}}}},
      {"evaluate", {{"batch_size", 4}, {"workers", 2}}}};
  std::ofstream(dir / "pipeline.json") << pipeline.dump(2);
  const auto r = ood("run pipeline.json --out results -q", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir / "results/metrics.json");
  const json metrics = json::parse(in);
  for (const char* set : {"cifar10-c-fog", "tiny-images", "textures"})
    for (const char* detector : {"msp", "energy"}) {
      SCOPED_TRACE(std::string(set) + "/" + detector);
      const auto& m = metrics.at(set).at(detector);
      EXPECT_GE(m.at("AUROC").get<double>(), 0.0);
      EXPECT_LE(m.at("AUROC").get<double>(), 1.0);
    }
  EXPECT_EQ(metrics.at("_meta").at("samples").at("in").get<int>(), 8);
  EXPECT_EQ(metrics.at("_meta").at("samples").at("textures").get<int>(), 5);
  EXPECT_EQ(metrics.at("_meta").at("samples").at("cifar10-c-fog").get<int>(), 10);
}

TEST(DatasetsCli, DataFetchDownloadsOnceAndReports) {
  const fs::path dir = temp_dir("datasets_cli_fetch");
  write_file(dir / "tree/300K_random_images.npy", npy_bytes("|u1", {3, 32, 32, 3}, pixels(3, 5)));
  ServedResources served(dir / "server");
  served.serve(dir / "tree/300K_random_images.npy");
  auto r = ood("data fetch tiny-images-300k --root '" + (dir / "root").string() + "' -q", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "tiny-images-300k: 3 samples")) << r.output;
  EXPECT_TRUE(fs::exists(dir / "root/300K_random_images.npy"));
  r = ood("data fetch tiny-images-300k --root '" + (dir / "root").string() + "' -q", dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(served.requests("300K_random_images.npy"), 1);
  {
    // Without --root (and without "root" in a pipeline): $OOD_DATA_DIR.
    ScopedEnvironment data_dir("OOD_DATA_DIR", (dir / "default-root").string());
    r = ood("data fetch tiny-images-300k -q", dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(dir / "default-root/300K_random_images.npy"));
    EXPECT_TRUE(contains(r.output, (dir / "default-root").string())) << r.output;
  }

  r = ood("data fetch tiny-image-300k --root x", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown dataset 'tiny-image-300k'")) << r.output;
  EXPECT_TRUE(contains(r.output, "tiny-images-300k")) << r.output;  // the suggestion
  r = ood("data fetch fashion-mnist", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "no \"download\" parameter")) << r.output;
  r = ood("data fetch svhn --root '" + (dir / "root").string() + "' --set split=validation", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "split")) << r.output;
}

TEST(DatasetsCli, MissingDataIsOneClearErrorWithExitOne) {
  const fs::path dir = temp_dir("datasets_cli_missing");
  const json pipeline = {
      {"model", {{"plugin", "wide-resnet"},
                 {"params", {{"num_classes", 10}, {"depth", 10}, {"widen_factor", 1}, {"in_channels", 3}}}}},
      {"data",
       {{"in", {{"plugin", "cifar10"}, {"params", {{"root", (dir / "none").string()}, {"train", false}}}}},
        {"out", {{"svhn", {{"plugin", "svhn"}, {"params", {{"root", (dir / "none").string()}, {"split", "test"}}}}}}}}},
      {"detectors", {{"msp", {{"plugin", "max-softmax"}}}}}};
  std::ofstream(dir / "pipeline.json") << pipeline.dump(2);
  const auto r = ood("run pipeline.json --out results -q", dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "cifar10: data not found")) << r.output;
  EXPECT_TRUE(contains(r.output, "cifar-10-python.tar.gz")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "results/metrics.json"));
}

}  // namespace
}  // namespace ood::test
