#include "tensor_math.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../engine/kernels/math.h"
#include "../engine/kernels/vector.h"

namespace gradhpo::hpo {

// Each operation is one engine kernel (engine/kernels/vector.h, math.h), so it runs on the
// device of its operands: hpo/'s methods work on weights that live on a GPU unchanged.

void axpy(Tensor& y, double a, const Tensor& x) {
  require(y.numel() == x.numel() && y.dtype() == x.dtype(),
          "axpy: " + y.shape().str() + " and " + x.shape().str() + " differ");
  kernels::axpy(y, x, a);
}

double dot(const Tensor& x, const Tensor& y) {
  require(y.numel() == x.numel() && y.dtype() == x.dtype(), "dot: " + x.shape().str() + " and " + y.shape().str() + " differ");
  return kernels::dot(x, y);
}

Tensor columns_dot(const Tensor& Z, const Tensor& u) {
  const std::int64_t P = u.numel(), K = Z.numel() / std::max<std::int64_t>(P, 1);
  require(Z.numel() == K * P, "columns_dot: " + Z.shape().str() + " does not have rows of " + std::to_string(P));
  std::vector<double> out(static_cast<std::size_t>(K));
  for (std::int64_t k = 0; k < K; ++k) out[static_cast<std::size_t>(k)] = dot(Z.flat_slice(k * P, P), u);
  return Tensor::from(out, Shape{K}, u.dtype()).to(u.device());
}

void clip(Tensor& x, double c) { kernels::clamp(x, -c, c); }

double max_abs(const Tensor& x) { return kernels::max_abs(x); }

bool same_bits(const Tensor& x, const Tensor& y) {
  if (x.dtype() != y.dtype() || x.numel() != y.numel()) return false;
  if (x.numel() == 0) return true;
  // Compared in host memory (a device tensor is copied): a test of exactness, not a hot loop.
  const Tensor hx = x.to(Device::cpu), hy = y.to(Device::cpu);
  return std::memcmp(hx.raw(), hy.raw(), hx.nbytes()) == 0;
}

}  // namespace gradhpo::hpo
