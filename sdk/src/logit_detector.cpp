#include "ood/logit_detector.hpp"

#include "ood/checks.hpp"
#include "ood/error.hpp"
#include "ood/views.hpp"

namespace ood {

LogitDetector::LogitDetector(std::string name, ScoreFn score_fn)
    : name_(std::move(name)), score_fn_(std::move(score_fn)) {}

LogitDetector::~LogitDetector() = default;

DetectorNeeds LogitDetector::needs() const {
  DetectorNeeds n;
  n.logits = true;
  return n;
}

at::Tensor LogitDetector::score(Views& views) { return score_logits(views.logits()); }

at::Tensor LogitDetector::score_logits(const at::Tensor& logits) const {
  if (!logits.defined() || !at::isFloatingType(logits.scalar_type()) || logits.dim() < 2 ||
      logits.size(1) < 1)
    throw ShapeError(name_ + ": logits must be a floating tensor [N, C] (or [N, C, H, W]) with C >= 1, got " +
                     describe_tensor(logits));
  return score_fn_(logits);
}

}  // namespace ood
