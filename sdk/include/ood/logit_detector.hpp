#pragma once
// A detector whose score is a function of the logits alone (MSP, energy, max-logit,
// entropy, ...). The class dimension is 1, so segmentation logits [N, C, H, W] give
// pixel-wise scores [N, H, W] with the same function.
#include <functional>
#include <string>

#include "ood/detector.hpp"
#include "ood/export.hpp"

namespace ood {

class OOD_SDK_API LogitDetector : public Detector {
 public:
  /// `score_fn` maps logits [N, C, ...] to scores [N, ...] (larger = more OOD).
  using ScoreFn = std::function<at::Tensor(const at::Tensor& logits)>;
  LogitDetector(std::string name, ScoreFn score_fn);
  ~LogitDetector() override;

  DetectorNeeds needs() const override;
  /// Checks the logits (floating, at least [N, C] with C >= 1) and applies the function.
  at::Tensor score(Views& views) override;
  /// The same on a logits tensor, for offline use.
  at::Tensor score_logits(const at::Tensor& logits) const;

 private:
  std::string name_;
  ScoreFn score_fn_;
};

}  // namespace ood
