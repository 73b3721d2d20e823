#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/io/torch_file.hpp"

namespace ood::test {
namespace {

std::string params(const std::filesystem::path& file, const std::string& inputs, const std::string& labels) {
  return "{\"path\": \"" + file.string() + "\", \"inputs\": \"" + inputs + "\", \"labels\": \"" + labels + "\"}";
}

TEST(TensorFile, ReadsTheReferenceData) {
  auto ds = make_dataset("tensor-file", params(fixture("reference/data/data.pt"), "x_out", "y_out"));
  ASSERT_EQ(ds->size(), 64);
  const at::Tensor x = tensor_of(reference_data(), "x_out");
  EXPECT_TRUE(ds->get(13).input.equal(x[13]));
  EXPECT_EQ(ds->get(13).label(), -1);
  EXPECT_TRUE(ds->labels().equal(tensor_of(reference_data(), "y_out")));
  EXPECT_EQ(ds->info().input_shape, (std::vector<int64_t>{3, 32, 32}));
}

std::string error_for(const std::string& p) {
  try {
    make_dataset("tensor-file", p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TensorFile, BadFilesGiveClearErrors) {
  const auto ref = fixture("reference/data/data.pt");
  const std::string missing_key = error_for(params(ref, "x_nope", "y_in"));
  EXPECT_NE(missing_key.find("no entry 'x_nope'"), std::string::npos) << missing_key;
  EXPECT_NE(missing_key.find("x_in"), std::string::npos) << missing_key;  // lists what there is

  const auto dir = temp_dir("tensor_file");
  TensorDict d;
  d.set("x", at::zeros({5, 2}));
  d.set("y", at::zeros({4}, at::kLong));
  d.set("yf", at::zeros({5}));
  d.set("xi", at::zeros({5, 2}, at::kLong));
  io::save_tensor_dict(dir / "bad.pt", d);
  EXPECT_NE(error_for(params(dir / "bad.pt", "x", "y")).find("4 labels"), std::string::npos);
  EXPECT_NE(error_for(params(dir / "bad.pt", "x", "yf")).find("integer"), std::string::npos);
  EXPECT_NE(error_for(params(dir / "bad.pt", "xi", "y")).find("floating"), std::string::npos);
  EXPECT_NE(error_for(params(dir / "nope.pt", "x", "y")).find("nope.pt"), std::string::npos);
  EXPECT_THROW(make_dataset("tensor-file", "{}"), InvalidArgument);  // path is required
}

}  // namespace
}  // namespace ood::test
