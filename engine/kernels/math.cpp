#include "math.h"

#include <algorithm>
#include <cmath>

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
  static const char* names[] = {"add", "sub", "mul", "div"};
  check_pair(names[static_cast<int>(op)], a, b);
  Tensor out = Tensor::empty(a.numel() >= b.numel() ? a.shape() : b.shape(), a.dtype());
  dispatch_float(a.dtype(), names[static_cast<int>(op)], [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    switch (op) {
      case BinaryOp::add: broadcast_loop(pa, a.numel(), pb, b.numel(), po, [](T x, T y) { return x + y; }); break;
      case BinaryOp::sub: broadcast_loop(pa, a.numel(), pb, b.numel(), po, [](T x, T y) { return x - y; }); break;
      case BinaryOp::mul: broadcast_loop(pa, a.numel(), pb, b.numel(), po, [](T x, T y) { return x * y; }); break;
      case BinaryOp::div: broadcast_loop(pa, a.numel(), pb, b.numel(), po, [](T x, T y) { return x / y; }); break;
    }
  });
  return out;
}

void axpy(Tensor& acc, const Tensor& x, double alpha) {
  check_pair("axpy", acc, x);
  GRADHPO_CHECK(x.numel() <= acc.numel(), "axpy: cannot accumulate " + x.shape().str() + " into " +
                                        acc.shape().str());
  dispatch_float(acc.dtype(), "axpy", [&](auto zero) {
    using T = decltype(zero);
    T* pa = acc.data<T>();
    const T al = static_cast<T>(alpha);
    broadcast_loop(static_cast<const T*>(pa), acc.numel(), x.data<T>(), x.numel(), pa,
                   [al](T s, T v) { return s + al * v; });
  });
}

Tensor affine(const Tensor& x, double a, double b) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "affine", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    parallel_chunks(x.numel(), [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) po[i] = ta * px[i] + tb;
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
template <class T> T sigmoid_of(T x) {
  // Split by sign so exp never overflows.
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}
}  // namespace

Tensor unary(UnaryOp op, const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const std::int64_t n = x.numel();
    switch (op) {
      case UnaryOp::exp: map_into(px, py, n, [](T v) { return std::exp(v); }); break;
      case UnaryOp::log: map_into(px, py, n, [](T v) { return std::log(v); }); break;
      case UnaryOp::tanh: map_into(px, py, n, [](T v) { return std::tanh(v); }); break;
      case UnaryOp::sigmoid: map_into(px, py, n, [](T v) { return sigmoid_of(v); }); break;
      case UnaryOp::relu: map_into(px, py, n, [](T v) { return v > T(0) ? v : T(0); }); break;
      // softplus(v) = log(1 + e^v) = max(v, 0) + log1p(e^-|v|), stable for large |v|.
      case UnaryOp::softplus:
        map_into(px, py, n, [](T v) { return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v))); });
        break;
      case UnaryOp::square: map_into(px, py, n, [](T v) { return v * v; }); break;
      case UnaryOp::sqrt: map_into(px, py, n, [](T v) { return std::sqrt(v); }); break;
      case UnaryOp::reciprocal: map_into(px, py, n, [](T v) { return T(1) / v; }); break;
    }
  });
  return y;
}

// First and second derivatives, written in terms of y = f(x) where that is cheaper:
//   exp: y, y          log: 1/x, -1/x^2          tanh: 1-y^2, -2y(1-y^2)
//   sigmoid: y(1-y), y(1-y)(1-2y)                relu: [x>0], 0
//   softplus: s=sigmoid(x), s(1-s)               square: 2x, 2
//   sqrt: 1/(2y), -1/(4y^3)                      reciprocal: -y^2, 2y^3
Tensor unary_derivative(UnaryOp op, const Tensor& x, const Tensor& y, int order) {
  Tensor d = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* pd = d.data<T>();
    const std::int64_t n = x.numel();
    const bool first = order == 1;
    switch (op) {
      case UnaryOp::exp: map_into(py, pd, n, [](T v) { return v; }); break;
      case UnaryOp::log:
        if (first) map_into(px, pd, n, [](T v) { return T(1) / v; });
        else map_into(px, pd, n, [](T v) { return T(-1) / (v * v); });
        break;
      case UnaryOp::tanh:
        if (first) map_into(py, pd, n, [](T v) { return T(1) - v * v; });
        else map_into(py, pd, n, [](T v) { return T(-2) * v * (T(1) - v * v); });
        break;
      case UnaryOp::sigmoid:
        if (first) map_into(py, pd, n, [](T v) { return v * (T(1) - v); });
        else map_into(py, pd, n, [](T v) { return v * (T(1) - v) * (T(1) - T(2) * v); });
        break;
      case UnaryOp::relu:
        if (first) map_into(px, pd, n, [](T v) { return v > T(0) ? T(1) : T(0); });
        else map_into(px, pd, n, [](T) { return T(0); });
        break;
      case UnaryOp::softplus:
        if (first) map_into(px, pd, n, [](T v) { return sigmoid_of(v); });
        else map_into(px, pd, n, [](T v) { const T s = sigmoid_of(v); return s * (T(1) - s); });
        break;
      case UnaryOp::square:
        if (first) map_into(px, pd, n, [](T v) { return T(2) * v; });
        else map_into(px, pd, n, [](T) { return T(2); });
        break;
      case UnaryOp::sqrt:
        if (first) map_into(py, pd, n, [](T v) { return T(0.5) / v; });
        else map_into(py, pd, n, [](T v) { return T(-0.25) / (v * v * v); });
        break;
      case UnaryOp::reciprocal:
        if (first) map_into(py, pd, n, [](T v) { return -v * v; });
        else map_into(py, pd, n, [](T v) { return T(2) * v * v * v; });
        break;
    }
  });
  return d;
}

Tensor reduce_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale) {
  GRADHPO_CHECK(A * B * C == x.numel(), "reduce: view [A, B, C] does not match " + x.shape().str());
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
