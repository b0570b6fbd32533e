#include "math.h"

#include <algorithm>
#include <cmath>

#include "../backend.h"
#include "../work_count.h"
#include "cpu.h"

namespace gradhpo::kernels {
namespace {

void check_pair(const char* what, const Tensor& a, const Tensor& b) {
  GRADHPO_CHECK(a.defined() && b.defined(), std::string(what) + ": undefined operand");
  GRADHPO_CHECK(a.dtype() == b.dtype(), std::string(what) + ": mixed dtypes " + dtype_name(a.dtype()) +
                                      " and " + dtype_name(b.dtype()));
  const std::int64_t na = a.numel(), nb = b.numel();
  GRADHPO_CHECK(na == nb || (nb > 0 && na % nb == 0) || (na > 0 && nb % na == 0),
          std::string(what) + ": cannot broadcast " + a.shape().str() + " with " + b.shape().str());
}

// The loop body of every binary op, on plain arrays so the compiler vectorizes it.
template <class T, class F>
void broadcast_loop(const T* a, std::int64_t na, const T* b, std::int64_t nb, T* out, F f) {
  const std::int64_t N = std::max(na, nb);
  if (na == nb) {
    parallel_chunks(N, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) out[i] = f(a[i], b[i]);
    });
    return;
  }
  const bool a_small = na < nb;
  const std::int64_t n = a_small ? na : nb;
  if (n == 1) {  // a scalar against everything: no row structure to walk
    const T s = a_small ? a[0] : b[0];
    parallel_chunks(N, [&](std::int64_t lo, std::int64_t hi) {
      if (a_small)
        for (std::int64_t i = lo; i < hi; ++i) out[i] = f(s, b[i]);
      else
        for (std::int64_t i = lo; i < hi; ++i) out[i] = f(a[i], s);
    });
    return;
  }
  const std::int64_t rows = N / n;
  parallel_chunks(N, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t r = s / n; r < rows && r * n < e; ++r) {
      const std::int64_t lo = std::max(s, r * n), hi = std::min(e, (r + 1) * n);
      if (a_small)
        for (std::int64_t i = lo; i < hi; ++i) out[i] = f(a[i - r * n], b[i]);
      else
        for (std::int64_t i = lo; i < hi; ++i) out[i] = f(a[i], b[i - r * n]);
    }
  });
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  count_elementwise(std::max(a.numel(), b.numel()));
  static const char* names[] = {"add", "sub", "mul", "div"};
  check_pair(names[static_cast<int>(op)], a, b);
  if (const DeviceBackend* dev = offload(names[static_cast<int>(op)], a, b)) return dev->binary(op, a, b);
  Tensor out = Tensor::empty(a.numel() >= b.numel() ? a.shape() : b.shape(), a.dtype());
  dispatch_float(a.dtype(), names[static_cast<int>(op)], [&](auto zero) {
    using T = decltype(zero);
    element::with_binary(op, [&](auto f) { broadcast_loop(a.data<T>(), a.numel(), b.data<T>(), b.numel(), out.data<T>(), f); });
  });
  return out;
}

void axpy(Tensor& acc, const Tensor& x, double alpha) {
  count_elementwise(x.numel());
  check_pair("axpy", acc, x);
  GRADHPO_CHECK(x.numel() <= acc.numel(), "axpy: cannot accumulate " + x.shape().str() + " into " +
                                        acc.shape().str());
  if (const DeviceBackend* dev = offload("axpy", acc, x)) return dev->axpy(acc, x, alpha);
  dispatch_float(acc.dtype(), "axpy", [&](auto zero) {
    using T = decltype(zero);
    T* pa = acc.data<T>();
    broadcast_loop(static_cast<const T*>(pa), acc.numel(), x.data<T>(), x.numel(), pa,
                   element::Axpy<T>{static_cast<T>(alpha)});
  });
}

Tensor affine(const Tensor& x, double a, double b) {
  count_elementwise(x.numel());
  if (const DeviceBackend* dev = offload("affine", x)) return dev->affine(x, a, b);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "affine", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const element::Affine<T> f{static_cast<T>(a), static_cast<T>(b)};
    parallel_chunks(x.numel(), [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) po[i] = f(px[i]);
    });
  });
  return out;
}

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"exp", "log", "tanh", "sigmoid", "relu", "softplus", "square", "sqrt",
                                "reciprocal"};
  return names[static_cast<int>(op)];
}

namespace {
template <class T, class F> void map_into(const T* x, T* y, std::int64_t n, F f) {
  parallel_chunks(n, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) y[i] = f(x[i]);
  });
}
template <class T, class F> void map2_into(const T* x, const T* y, T* d, std::int64_t n, F f) {
  parallel_chunks(n, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) d[i] = f(x[i], y[i]);
  });
}
}  // namespace

Tensor unary(UnaryOp op, const Tensor& x) {
  count_elementwise(x.numel());
  if (const DeviceBackend* dev = offload(unary_name(op), x)) return dev->unary(op, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    element::with_unary(op, [&](auto fn) {
      map_into(x.data<T>(), y.data<T>(), x.numel(), element::Value<decltype(fn)>{});
    });
  });
  return y;
}

// The formulas are element.h's, in terms of x and y = f(x).
Tensor unary_derivative(UnaryOp op, const Tensor& x, const Tensor& y, int order) {
  count_elementwise(x.numel());
  if (const DeviceBackend* dev = offload(unary_name(op), x, y)) return dev->unary_derivative(op, x, y, order);
  Tensor d = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    element::with_unary(op, [&](auto fn) {
      using Fn = decltype(fn);
      if (order == 1) map2_into(x.data<T>(), y.data<T>(), d.data<T>(), x.numel(), element::FirstDerivative<Fn>{});
      else map2_into(x.data<T>(), y.data<T>(), d.data<T>(), x.numel(), element::SecondDerivative<Fn>{});
    });
  });
  return d;
}

Tensor relu_backward(const Tensor& g, const Tensor& x) {
  count_elementwise(g.numel());
  check_pair("relu", g, x);
  GRADHPO_CHECK(x.numel() > 0 && g.numel() % x.numel() == 0,
                "relu backward: an adjoint of shape " + g.shape().str() + " for an input of shape " + x.shape().str());
  if (offload("relu", g, x)) return binary(BinaryOp::mul, g, unary_derivative(UnaryOp::relu, x, x, 1));
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  dispatch_float(g.dtype(), "relu", [&](auto zero) {
    using T = decltype(zero);
    const T* pg = g.data<T>();
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const std::int64_t N = x.numel();
    parallel_chunks(g.numel(), [&](std::int64_t s, std::int64_t e) {
      // Row by row within the chunk, so that the inner loop is a plain vectorizable one.
      for (std::int64_t i = s; i < e;) {
        const std::int64_t j = i % N, len = std::min(e - i, N - j);
        const T* gr = pg + i;
        const T* xr = px + j;
        T* orow = po + i;
        for (std::int64_t l = 0; l < len; ++l) orow[l] = xr[l] > T(0) ? gr[l] : T(0);
        i += len;
      }
    });
  });
  return out;
}

Tensor reduce_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale) {
  GRADHPO_CHECK(A * B * C == x.numel(), "reduce: view [A, B, C] does not match " + x.shape().str());
  if (const DeviceBackend* dev = offload("reduce", x)) return dev->reduce_middle(x, A, B, C, scale);
  Tensor out = Tensor::empty(Shape{A * C}, x.dtype());
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const T s = static_cast<T>(scale);
    if (C == 1) {
      // Row sums: one contiguous run per output.
      for (std::int64_t a = 0; a < A; ++a)
        po[a] = s * ConstArrayMap<T>(px + a * B, B).sum();
      return;
    }
    for (std::int64_t a = 0; a < A; ++a) {
      ArrayMap<T> o(po + a * C, C);
      o = ConstArrayMap<T>(px + a * B * C, C);
      for (std::int64_t b = 1; b < B; ++b) o += ConstArrayMap<T>(px + (a * B + b) * C, C);
      o *= s;
    }
  });
  return out;
}

Tensor expand_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale) {
  GRADHPO_CHECK(A * C == x.numel(), "expand: view [A, C] does not match " + x.shape().str());
  if (const DeviceBackend* dev = offload("expand", x)) return dev->expand_middle(x, A, B, C, scale);
  Tensor out = Tensor::empty(Shape{A * B * C}, x.dtype());
  dispatch_float(x.dtype(), "expand", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const T s = static_cast<T>(scale);
    if (C == 1) {  // each value repeated B times: a fill per value
      for (std::int64_t a = 0; a < A; ++a) std::fill_n(po + a * B, B, s * px[a]);
      return;
    }
    for (std::int64_t a = 0; a < A; ++a)
      for (std::int64_t b = 0; b < B; ++b)
        ArrayMap<T>(po + (a * B + b) * C, C) = s * ConstArrayMap<T>(px + a * C, C);
  });
  return out;
}

}  // namespace gradhpo::kernels
