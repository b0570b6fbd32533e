#include "tensor_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gradhpo::hpo {

void axpy(Tensor& y, double a, const Tensor& x) {
  require(y.numel() == x.numel() && y.dtype() == x.dtype(),
          "axpy: " + y.shape().str() + " and " + x.shape().str() + " differ");
  dispatch_float(y.dtype(), "axpy", [&](auto zero) {
    using T = decltype(zero);
    T* py = y.data<T>();
    const T* px = x.data<T>();
    const T s = static_cast<T>(a);
    for (std::int64_t i = 0; i < y.numel(); ++i) py[i] += s * px[i];
  });
}

double dot(const Tensor& x, const Tensor& y) {
  require(y.numel() == x.numel() && y.dtype() == x.dtype(), "dot: " + x.shape().str() + " and " + y.shape().str() + " differ");
  return dispatch_float(x.dtype(), "dot", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    double s = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(px[i]) * static_cast<double>(py[i]);
    return s;
  });
}

Tensor columns_dot(const Tensor& Z, const Tensor& u) {
  const std::int64_t P = u.numel(), K = Z.numel() / std::max<std::int64_t>(P, 1);
  require(Z.numel() == K * P, "columns_dot: " + Z.shape().str() + " does not have rows of " + std::to_string(P));
  Tensor out = Tensor::empty(Shape{K}, u.dtype());
  for (std::int64_t k = 0; k < K; ++k) out.flat_slice(k, 1).fill(dot(Z.flat_slice(k * P, P), u));
  return out;
}

void clip(Tensor& x, double c) {
  dispatch_float(x.dtype(), "clip", [&](auto zero) {
    using T = decltype(zero);
    T* p = x.data<T>();
    const T hi = static_cast<T>(c);
    for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = std::clamp(p[i], -hi, hi);
  });
}

double max_abs(const Tensor& x) {
  return dispatch_float(x.dtype(), "max_abs", [&](auto zero) {
    using T = decltype(zero);
    const T* p = x.data<T>();
    double m = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::abs(static_cast<double>(p[i])));
    return m;
  });
}

bool same_bits(const Tensor& x, const Tensor& y) {
  if (x.dtype() != y.dtype() || x.numel() != y.numel()) return false;
  return dispatch_float(x.dtype(), "same_bits", [&](auto zero) {
    using T = decltype(zero);
    return x.numel() == 0 || std::memcmp(x.data<T>(), y.data<T>(), x.nbytes()) == 0;
  });
}

}  // namespace gradhpo::hpo
