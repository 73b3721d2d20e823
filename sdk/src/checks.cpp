#include "ood/checks.hpp"

#include <sstream>

#include "ood/error.hpp"

namespace ood {

std::string describe_tensor(const at::Tensor& tensor) {
  if (!tensor.defined()) return "undefined tensor";
  std::ostringstream out;
  out << c10::toString(tensor.scalar_type()) << " [";
  for (int64_t i = 0; i < tensor.dim(); ++i) out << (i ? ", " : "") << tensor.size(i);
  out << "]";
  return out.str();
}

void require_floating(const at::Tensor& tensor, std::string_view component, std::string_view what,
                      std::int64_t dims, std::string_view shape_hint) {
  if (tensor.defined() && at::isFloatingType(tensor.scalar_type()) && tensor.dim() == dims &&
      (dims < 2 || tensor.size(1) > 0))
    return;
  std::ostringstream msg;
  msg << component << ": " << what << " must be a " << dims << "-D floating tensor " << shape_hint
      << ", got " << describe_tensor(tensor);
  throw ShapeError(msg.str());
}

}  // namespace ood
