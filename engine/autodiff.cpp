#include "autodiff.h"

namespace gradhpo::detail {

Tensor like_direction(const Tensor& block, const Tensor& direction, const Shape& w_shape, const Shape& single) {
  if (direction.shape() == w_shape) return block.reshape(single);
  return block.reshape(Shape{block.dim(0), block.numel() / block.dim(0)});
}

void require_scalar(const Var& out, const char* who) {
  GRADHPO_CHECK(out.numel() == 1, std::string(who) + ": the function must return a scalar loss, got shape " +
                                out.shape().str());
}

void require_direction(const Tensor& w, const Tensor& v, const char* who) {
  GRADHPO_CHECK(v.defined(), std::string(who) + ": no direction given");
  GRADHPO_CHECK(v.dtype() == w.dtype(), std::string(who) + ": direction is " + dtype_name(v.dtype()) + ", w is " +
                                      dtype_name(w.dtype()));
  GRADHPO_CHECK(v.shape() == w.shape() || (v.ndim() == 2 && v.dim(1) == w.numel() && v.dim(0) > 0),
          std::string(who) + ": direction of shape " + v.shape().str() + " for w of shape " + w.shape().str() +
              " (expected w's shape, or [K, " + std::to_string(w.numel()) + "] for K directions)");
}

}  // namespace gradhpo::detail
