// Parity of cross-entropy with pytorch-ood's CrossEntropyLoss: values and gradients,
// classification and segmentation, every reduction, float32 and float64.
#include "test_support.hpp"

#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood::test {
namespace {

at::Tensor loss_and_grad(Loss& loss, const at::Tensor& logits_in, const at::Tensor& y, at::Tensor& grad) {
  at::Tensor logits = logits_in.detach().clone().requires_grad_(true);
  Views views;
  views.set_logits(logits);
  at::Tensor value = loss.forward(views, y);
  (value.dim() == 0 ? value : value.sum()).backward();
  grad = logits.grad();
  return value.detach();
}

TEST(CrossEntropy, MatchesPytorchOodForEveryCase) {
  const auto fx = load_tensor_dict_file("reference/losses/crossentropy.pt");
  for (const std::string task : {"cls", "seg"}) {
    const std::string prefix = task == "cls" ? "inputs_" : "inputs_seg_";
    const at::Tensor logits = tensor_of(fx, prefix + "logits");
    const at::Tensor y = tensor_of(fx, prefix + "y");
    ASSERT_TRUE((y < 0).any().item<bool>()) << "the fixture should contain OOD targets";
    for (const std::string reduction : {"mean", "sum", "none"}) {
      auto loss = make_loss("cross-entropy", R"({"reduction": ")" + reduction + "\"}");
      const std::string key = task + "_" + reduction;
      at::Tensor grad;
      EXPECT_TRUE(all_close(loss_and_grad(*loss, logits, y, grad), tensor_of(fx, key + "_value"), 1e-5, 1e-6)) << key;
      EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits"), 1e-5, 1e-6)) << key;
      EXPECT_TRUE(all_close(loss_and_grad(*loss, logits.to(at::kDouble), y, grad), tensor_of(fx, key + "_value_f64"),
                            1e-10, 1e-12))
          << key;
      EXPECT_TRUE(all_close(grad, tensor_of(fx, key + "_grad_logits_f64"), 1e-10, 1e-12)) << key;
    }
  }
}

TEST(CrossEntropy, OnlyOodTargetsGiveZero) {
  auto loss = make_loss("cross-entropy");
  at::Tensor grad;
  EXPECT_EQ(loss_and_grad(*loss, at::randn({4, 3}), at::full({4}, -1, at::kLong), grad).item<float>(), 0.0f);
}

TEST(CrossEntropy, RefusesBadTargets) {
  auto loss = make_loss("cross-entropy");
  at::Tensor grad;
  EXPECT_THROW(loss_and_grad(*loss, at::randn({4, 3}), at::zeros({4}), grad), ShapeError);  // float targets
  EXPECT_THROW(loss_and_grad(*loss, at::randn({4, 3}), at::zeros({5}, at::kLong), grad), ShapeError);
  EXPECT_THROW(loss_and_grad(*loss, at::randn({4, 3}), at::full({4}, 3, at::kLong), grad), ShapeError);
  EXPECT_THROW(make_loss("cross-entropy", R"({"reduction": "avg"})"), InvalidArgument);
}

}  // namespace
}  // namespace ood::test
