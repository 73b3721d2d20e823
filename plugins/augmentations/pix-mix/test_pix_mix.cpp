// PixMix: the five byte operations against PIL 9.4 (tests/fixtures/augmentations/
// pixmix_ops.pt, written by generate_pixmix.py), the Beta draws, and the component:
// shapes, ranges, seeding, the rounds, mixing-set handling and errors.
#include "test_support.hpp"

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"
#include "ood/random.hpp"
#include "ood/tensor_dict.hpp"
#include "pixmix_ops.hpp"

namespace ood::test {
namespace {

using namespace ood_pixmix;

Sample image(at::Tensor x) { return {std::move(x), at::scalar_tensor(5, at::kLong)}; }

const auto& ops_fixture() {
  static const auto d = load_tensor_dict_file("augmentations/pixmix_ops.pt");
  return d;
}

at::Tensor run_byte_op(AugmentOp op, const at::Tensor& bytes, double arg) {
  switch (op) {
    case AugmentOp::Equalize: return equalize(bytes);
    case AugmentOp::Autocontrast: return autocontrast(bytes);
    case AugmentOp::Posterize: return posterize(bytes, static_cast<std::int64_t>(arg));
    case AugmentOp::Rotate: return rotate(bytes, arg);
    case AugmentOp::Solarize: return solarize(bytes, static_cast<std::int64_t>(arg));
  }
  return {};
}

TEST(PixMix, ByteOperationsEqualPil) {
  const std::int64_t count = tensor_of(ops_fixture(), "count").item<std::int64_t>();
  ASSERT_GT(count, 100);
  int byte_cases = 0, float_cases = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::string key = "case" + std::to_string(i) + "_";
    const at::Tensor kind = tensor_of(ops_fixture(), key + "op");
    const auto op = static_cast<AugmentOp>(kind[0].item<std::int64_t>());
    const bool through_floats = kind[1].item<std::int64_t>() == 1;
    const double arg = tensor_of(ops_fixture(), key + "arg").item<double>();
    const at::Tensor input = tensor_of(ops_fixture(), key + "input");
    const at::Tensor expected = tensor_of(ops_fixture(), key + "output");
    if (through_floats) {
      ++float_cases;
      // to_pil_image, PIL, to_tensor: exactly the same floats.
      const at::Tensor actual = augment(input, op, static_cast<std::int64_t>(arg));
      EXPECT_EQ(actual.scalar_type(), at::kFloat);
      EXPECT_TRUE(actual.equal(expected)) << "case " << i << " op " << static_cast<int>(op) << " max diff "
                                          << (actual - expected).abs().max().item<float>();
    } else {
      ++byte_cases;
      const at::Tensor actual = run_byte_op(op, input, arg);
      ASSERT_EQ(actual.sizes(), expected.sizes()) << "case " << i;
      const auto differing = (actual != expected).sum().item<std::int64_t>();
      EXPECT_EQ(differing, 0) << "case " << i << " op " << static_cast<int>(op) << " arg " << arg << " input "
                              << describe_tensor(input) << ": " << differing << " values differ";
    }
  }
  EXPECT_GT(byte_cases, 80);
  EXPECT_EQ(float_cases, 15);
}

TEST(PixMix, EqualizeClipsTheTableAndKeepsFlatChannels) {
  // 299 zeros and one 10: PIL's table gives 299 for bin 10, applied as 255.
  at::Tensor spike = at::zeros({1, 10, 30}, at::kByte);
  spike[0][3][4] = 10;
  const at::Tensor eq = equalize(spike);
  EXPECT_EQ(eq[0][3][4].item<int>(), 255);
  EXPECT_EQ(eq.sum().item<std::int64_t>(), 255);
  const at::Tensor flat = at::full({2, 3, 3}, 77, at::kByte);
  EXPECT_TRUE(equalize(flat).equal(flat));
  EXPECT_TRUE(autocontrast(flat).equal(flat));
}

TEST(PixMix, FloatBytesRoundTripTruncatesLikeToPilImage) {
  const at::Tensor x = at::tensor({0.0f, 0.5f, 0.99999f, 1.0f, 1.5f, -0.2f}).view({1, 1, 6});
  const at::Tensor bytes = to_bytes(x);
  EXPECT_TRUE(bytes.equal(at::tensor({0, 127, 254, 255, 255, 0}, at::kByte).view({1, 1, 6})));
  EXPECT_TRUE(from_bytes(bytes).equal(bytes.to(at::kFloat) / 255));
}

TEST(PixMix, BetaAndGammaDrawsHaveTheirMoments) {
  at::Generator gen = make_generator(123);
  const int n = 20000;
  double beta31 = 0, beta13 = 0, gamma_half = 0, gamma3 = 0;
  for (int i = 0; i < n; ++i) {
    beta31 += sample_beta(gen, 3.0, 1.0);
    beta13 += sample_beta(gen, 1.0, 3.0);
    gamma_half += sample_gamma(gen, 0.5);
    gamma3 += sample_gamma(gen, 3.0);
  }
  // Means 3/4, 1/4, 0.5, 3; standard errors about 0.0014, 0.0014, 0.005, 0.012.
  EXPECT_NEAR(beta31 / n, 0.75, 0.008);
  EXPECT_NEAR(beta13 / n, 0.25, 0.008);
  EXPECT_NEAR(gamma_half / n, 0.5, 0.025);
  EXPECT_NEAR(gamma3 / n, 3.0, 0.06);
  // get_ab: both branches, a in (0, 2), b in (-1, 1), a > 1 exactly when b < 0.
  int negative = 0;
  for (int i = 0; i < 2000; ++i) {
    const MixWeights w = sample_mix_weights(gen, 3.0);
    ASSERT_GT(w.a, 0.0f);
    ASSERT_LT(w.a, 2.0f);
    ASSERT_GT(w.b, -1.0f);
    ASSERT_LT(w.b, 1.0f);
    EXPECT_EQ(w.b < 0, w.a >= 1.0f) << w.a << " " << w.b;
    negative += w.b < 0;
  }
  EXPECT_GT(negative, 900);
  EXPECT_LT(negative, 1100);
}

TEST(PixMix, MixingFormulas) {
  const at::Tensor x = at::tensor({0.0f, 0.25f, 1.0f}), y = at::tensor({1.0f, 0.5f, 0.0f});
  EXPECT_TRUE(all_close(mix_add(x, y, 0.5f, 0.25f),
                        at::tensor({(0.5f * -1 + 0.25f * 1 + 1) / 2, (0.5f * -0.5f + 0 + 1) / 2,
                                    (0.5f * 1 + 0.25f * -1 + 1) / 2}),
                        0, 1e-7));
  const at::Tensor m = mix_multiply(x, y, 0.5f, -0.5f);
  EXPECT_EQ(m[0].item<float>(), 0.0f);
  EXPECT_NEAR(m[1].item<float>(), std::sqrt(0.5) * 1 / 2, 1e-7);
  EXPECT_GT(m[2].item<float>(), 1e17f);  // 2^0.5 * (1e-37)^-0.5 / 2: clipped later
}

/// A tensor-file dataset of the given images (labels -1), written to a temporary file.
std::string mixing_set_json(const std::string& name, const at::Tensor& images) {
  const auto file = temp_dir("pix-mix-" + name) / "mixing.pt";
  TensorDict dict;
  dict.set("inputs", images);
  dict.set("labels", at::full({images.size(0)}, -1, at::kLong));
  io::save_tensor_dict(file, dict);
  return R"({"plugin": "tensor-file", "params": {"path": ")" + file.string() + R"("}})";
}

std::shared_ptr<Augmentation> pix_mix(const std::string& mixing_set, const std::string& extra = "") {
  return make_augmentation("pix-mix", R"({"mixing_set": )" + mixing_set + extra + "}");
}

const std::string kNoise = R"({"plugin": "uniform-noise", "params": {"size": 20, "shape": [3, 16, 16], "seed": 1}})";

TEST(PixMix, ShapeRangeLabelAndDefaultNormalisation) {
  const at::Tensor x = at::rand({3, 16, 16});
  auto unit = pix_mix(kNoise, R"(, "mean": [0, 0, 0], "std": [1, 1, 1])");
  auto defaults = pix_mix(kNoise);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    at::Generator g1 = make_generator(seed), g2 = make_generator(seed);
    const Sample a = unit->apply(image(x), g1);
    EXPECT_EQ(a.input.sizes(), x.sizes());
    EXPECT_EQ(a.input.scalar_type(), at::kFloat);
    EXPECT_EQ(a.label(), 5);
    EXPECT_GE(a.input.min().item<float>(), 0.0f);
    EXPECT_LE(a.input.max().item<float>(), 1.0f);
    // pytorch-ood's default Normalize(mean=1, std=1): the same mix minus 1.
    EXPECT_TRUE(defaults->apply(image(x), g2).input.equal(a.input - 1));
  }
  auto paper = pix_mix(kNoise, R"(, "mean": [0.5], "std": [0.5])");
  at::Generator g1 = make_generator(3), g2 = make_generator(3);
  EXPECT_TRUE(all_close(paper->apply(image(x), g1).input, (unit->apply(image(x), g2).input - 0.5) / 0.5, 0, 1e-6));
}

TEST(PixMix, SameSeedSameResultOtherSeedsDiffer) {
  auto p = pix_mix(kNoise);
  const at::Tensor x = at::rand({3, 16, 16});
  at::Generator g1 = make_generator(42), g2 = make_generator(42);
  const at::Tensor a = p->apply(image(x), g1).input;
  EXPECT_TRUE(a.equal(p->apply(image(x), g2).input));
  int different = 0;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    at::Generator g = make_generator(1000 + seed);
    different += p->apply(image(x), g).input.equal(a) ? 0 : 1;
  }
  EXPECT_GE(different, 9);
}

TEST(PixMix, NoRoundsGiveTheImageOrOneAugmentation) {
  // k = 0: mixed is x or augment(x), nothing is mixed in.
  auto p = pix_mix(kNoise, R"(, "k": 0, "mean": [0], "std": [1])");
  const at::Tensor x = at::rand({3, 16, 16});
  int unchanged = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    at::Generator g = make_generator(seed);
    const at::Tensor out = p->apply(image(x), g).input;
    if (out.equal(x)) {
      ++unchanged;
      continue;
    }
    bool is_augmentation = false;
    for (int op = 0; op < kAugmentOpCount; ++op) is_augmentation |= out.equal(augment(x, AugmentOp(op), 3));
    EXPECT_TRUE(is_augmentation) << "seed " << seed;
  }
  EXPECT_GT(unchanged, 70);
  EXPECT_LT(unchanged, 130);
}

TEST(PixMix, MixingSetContributesAtTheExpectedRate) {
  // Same seeds, two mixing sets: the outputs differ exactly when some round mixes the
  // picture in. With k = 4: P = (1/5) sum_{r=0..4} (1 - 2^-r) = 0.6125.
  const at::Tensor pictures = at::rand({2, 3, 16, 16});
  auto with_a = pix_mix(mixing_set_json("a", pictures.narrow(0, 0, 1)));
  auto with_b = pix_mix(mixing_set_json("b", pictures.narrow(0, 1, 1)));
  const at::Tensor x = at::rand({3, 16, 16});
  const int n = 600;
  int differ = 0;
  double correlation_sum = 0;
  for (int seed = 0; seed < n; ++seed) {
    at::Generator g1 = make_generator(seed), g2 = make_generator(seed);
    const at::Tensor out_a = with_a->apply(image(x), g1).input, out_b = with_b->apply(image(x), g2).input;
    if (out_a.equal(out_b)) continue;
    ++differ;
    // The difference follows the pictures' difference (in either direction: b may be < 0).
    const at::Tensor d = (out_a - out_b).flatten(), p = (pictures[0] - pictures[1]).flatten();
    correlation_sum += std::abs(at::corrcoef(at::stack({d, p})).select(0, 0)[1].item<double>());
  }
  std::cout << "[ pix-mix ] mixing picture used in " << differ << " of " << n
            << " samples (expected 0.6125); mean |correlation| with it " << correlation_sum / differ << "\n";
  EXPECT_NEAR(static_cast<double>(differ) / n, 0.6125, 0.06);
  EXPECT_GT(correlation_sum / differ, 0.3);
}

TEST(PixMix, MixingPicturesOfAnotherSizeOrGreyAreFitted) {
  const at::Tensor x = at::rand({3, 16, 16});
  const at::Tensor small = at::rand({1, 3, 8, 8});
  const std::string mean0 = R"(, "mean": [0], "std": [1], "k": 4)";
  auto p = pix_mix(mixing_set_json("small", small), mean0);
  const at::Tensor resized = at::upsample_bilinear2d(small, {16, 16}, false)[0];
  auto same = pix_mix(mixing_set_json("resized", resized.unsqueeze(0)), mean0);
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    at::Generator g1 = make_generator(seed), g2 = make_generator(seed);
    EXPECT_TRUE(p->apply(image(x), g1).input.equal(same->apply(image(x), g2).input)) << seed;
  }
  const at::Tensor grey = at::rand({1, 1, 16, 16});
  auto grey_set = pix_mix(mixing_set_json("grey", grey), mean0);
  auto rgb_set = pix_mix(mixing_set_json("grey3", grey.expand({1, 3, 16, 16}).contiguous()), mean0);
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    at::Generator g1 = make_generator(seed), g2 = make_generator(seed);
    EXPECT_TRUE(grey_set->apply(image(x), g1).input.equal(rgb_set->apply(image(x), g2).input)) << seed;
  }
  // Grey samples with a grey mixing set; the byte operations run per channel.
  at::Generator g = make_generator(0);
  EXPECT_EQ(grey_set->apply(image(at::rand({1, 10, 12})), g).input.sizes(), (std::vector<int64_t>{1, 10, 12}));
}

TEST(PixMix, Errors) {
  auto p = pix_mix(kNoise);
  at::Generator gen = make_generator(0);
  EXPECT_THROW(p->apply(image(at::rand({1, 3, 16, 16})), gen), ShapeError);
  EXPECT_THROW(p->apply(image(at::rand({16, 16})), gen), ShapeError);
  EXPECT_THROW(p->apply(image(at::randint(0, 255, {3, 16, 16}, at::kLong)), gen), ShapeError);
  try {
    p->apply(image(at::rand({2, 3, 4, 4})), gen);
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("pix-mix"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Float [2, 3, 4, 4]"), std::string::npos) << e.what();
  }
  // An RGB mixing set with grey samples (here also the mean's 3 values), a 2-channel one
  // with RGB samples: errors on the first sample, whatever the draws.
  auto grey_mean = pix_mix(kNoise, R"(, "mean": [0], "std": [1])");
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    at::Generator g = make_generator(seed);
    EXPECT_THROW(grey_mean->apply(image(at::rand({1, 16, 16})), g), ShapeError);
  }
  EXPECT_THROW(p->apply(image(at::rand({1, 16, 16})), gen), ShapeError);  // mean has 3 values
  auto two = pix_mix(mixing_set_json("two", at::rand({1, 2, 16, 16})));
  try {
    two->apply(image(at::rand({3, 16, 16})), gen);
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("mixing_set"), std::string::npos) << e.what();
  }
  // An empty mixing set, bad parameters.
  const std::string empty =
      R"({"plugin": "class-filter", "params": {"dataset": )" + kNoise + R"(, "classes": [0]}})";
  EXPECT_THROW(pix_mix(empty), InvalidArgument);
  EXPECT_THROW(pix_mix(kNoise, R"(, "beta": 0)"), InvalidArgument);
  EXPECT_THROW(pix_mix(kNoise, R"(, "aug_severity": 9)"), InvalidArgument);
  EXPECT_THROW(pix_mix(kNoise, R"(, "k": -1)"), InvalidArgument);
  EXPECT_THROW(pix_mix(kNoise, R"(, "std": [1, 0, 1])"), InvalidArgument);
  EXPECT_THROW(pix_mix(kNoise, R"(, "mean": [0, 0], "std": [1, 1, 1])"), InvalidArgument);
  EXPECT_THROW(make_augmentation("pix-mix", "{}"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
