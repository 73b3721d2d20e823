// Out-of-line members of the SDK interfaces: the virtual destructors anchor each
// interface's vtable and typeinfo in libood-sdk; the defaults fail loudly.
#include <ATen/ATen.h>

#include "ood/augmentation.hpp"
#include "ood/context.hpp"
#include "ood/dataset.hpp"
#include "ood/detector.hpp"
#include "ood/error.hpp"
#include "ood/loss.hpp"
#include "ood/model.hpp"
#include "ood/plugin.hpp"

namespace ood {

Model::~Model() = default;

at::Tensor Model::logits(const at::Tensor& inputs) { return head(features(inputs)); }

TensorDict Model::intermediate(const at::Tensor&, const std::vector<std::string>&) {
  throw NotSupported("this model does not expose intermediate layers");
}

at::Tensor Model::features_before_pool(const at::Tensor&) {
  throw NotSupported("this model does not expose the feature map before global pooling");
}

at::Tensor Model::pool(const at::Tensor&) {
  throw NotSupported("this model does not expose the pooling from its feature map");
}

at::Tensor Model::logits_from_feature_map(const at::Tensor& feature_map) { return head(pool(feature_map)); }

std::string Model::missing_view(View) const { return {}; }

Detector::~Detector() = default;

void Detector::attach(Model&) {}

void Detector::fit_batch(Views&, const at::Tensor&) {
  throw StateError("this detector does not fit: it has no fitting phase");
}

void Detector::finish_fit() {}

bool Detector::is_fitted() const { return true; }

TensorDict Detector::state() const { return {}; }

void Detector::load_state(const TensorDict& state) {
  if (!state.empty())
    throw StateError("this detector has no fitted state, but the state file holds " +
                     std::to_string(state.size()) + " tensors");
}

Loss::~Loss() = default;
std::vector<at::Tensor> Loss::parameters() { return {}; }
void Loss::attach(Model&) {}
TensorDict Loss::state() const { return {}; }
void Loss::load_state(const TensorDict& state) {
  if (!state.empty())
    throw StateError("this loss keeps no state, but " + std::to_string(state.size()) + " tensors were given");
}

std::int64_t Sample::label() const {
  if (!target.defined() || target.numel() != 1)
    throw ShapeError("sample target is not a single class label");
  return target.item<std::int64_t>();
}

Dataset::~Dataset() = default;

at::Tensor Dataset::labels() const {
  const std::int64_t n = size();
  at::Tensor out = at::empty({n}, at::kLong);
  auto* data = out.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) data[i] = get(i).label();
  return out;
}

Augmentation::~Augmentation() = default;
Context::~Context() = default;
Registrar::~Registrar() = default;

}  // namespace ood
