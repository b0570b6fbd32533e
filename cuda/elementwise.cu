// Elementwise kernels: the loops of engine/kernels/math.cpp on the GPU, around the same element
// functors (engine/kernels/element.h), with the same modular broadcasting: element i of the
// larger operand pairs with element i mod n of the smaller.
#include "../engine/kernels/math.h"  // unary_name
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

using namespace kernels;

template <class T> __global__ void fill_kernel(T* out, std::int64_t n, T value) {
  GRADHPO_FOR_EACH(i, n) out[i] = value;
}

template <class T, class F>
__global__ void broadcast_kernel(const T* a, std::int64_t na, const T* b, std::int64_t nb, T* out, std::int64_t n, F f) {
  GRADHPO_FOR_EACH(i, n) out[i] = f(a[na == n ? i : i % na], b[nb == n ? i : i % nb]);
}

template <class T, class F> __global__ void map_kernel(const T* x, T* y, std::int64_t n, F f) {
  GRADHPO_FOR_EACH(i, n) y[i] = f(x[i]);
}

template <class T, class F> __global__ void map2_kernel(const T* x, const T* y, T* d, std::int64_t n, F f) {
  GRADHPO_FOR_EACH(i, n) d[i] = f(x[i], y[i]);
}

template <class T, class F>
void broadcast(const char* op, const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const std::int64_t n = out.numel();
  launch("broadcast_kernel", op, broadcast_kernel<T, F>, blocks_for(n), kThreads, ptr<T>(a), a.numel(), ptr<T>(b),
         b.numel(), ptr<T>(out), n, f);
}

}  // namespace

void fill(Tensor& t, double value) {
  const std::int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::f32: launch("fill_kernel", "Tensor::fill", fill_kernel<float>, blocks_for(n), kThreads, ptr<float>(t), n, static_cast<float>(value)); break;
    case DType::f64: launch("fill_kernel", "Tensor::fill", fill_kernel<double>, blocks_for(n), kThreads, ptr<double>(t), n, value); break;
    case DType::i32: launch("fill_kernel", "Tensor::fill", fill_kernel<std::int32_t>, blocks_for(n), kThreads, ptr<std::int32_t>(t), n, static_cast<std::int32_t>(value)); break;
  }
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  static const char* names[] = {"add", "sub", "mul", "div"};
  const char* name = names[static_cast<int>(op)];
  Tensor out = Tensor::empty(a.numel() >= b.numel() ? a.shape() : b.shape(), a.dtype(), Device::cuda);
  dispatch_float(a.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    element::with_binary(op, [&](auto f) { broadcast<T>(name, a, b, out, f); });
  });
  return out;
}

void axpy(Tensor& acc, const Tensor& x, double alpha) {
  dispatch_float(acc.dtype(), "axpy", [&](auto zero) {
    using T = decltype(zero);
    broadcast<T>("axpy", acc, x, acc, element::Axpy<T>{static_cast<T>(alpha)});
  });
}

Tensor affine(const Tensor& x, double a, double b) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  const std::int64_t n = x.numel();
  dispatch_float(x.dtype(), "affine", [&](auto zero) {
    using T = decltype(zero);
    using F = element::Affine<T>;
    launch("map_kernel", "affine", map_kernel<T, F>, blocks_for(n), kThreads, ptr<T>(x), ptr<T>(out), n,
           F{static_cast<T>(a), static_cast<T>(b)});
  });
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  const std::int64_t n = x.numel();
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    element::with_unary(op, [&](auto fn) {
      using F = element::Value<decltype(fn)>;
      launch("map_kernel", unary_name(op), map_kernel<T, F>, blocks_for(n), kThreads, ptr<T>(x), ptr<T>(y), n, F{});
    });
  });
  return y;
}

Tensor unary_derivative(UnaryOp op, const Tensor& x, const Tensor& y, int order) {
  Tensor d = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  const std::int64_t n = x.numel();
  dispatch_float(x.dtype(), unary_name(op), [&](auto zero) {
    using T = decltype(zero);
    element::with_unary(op, [&](auto fn) {
      using Fn = decltype(fn);
      if (order == 1)
        launch("map2_kernel", unary_name(op), map2_kernel<T, element::FirstDerivative<Fn>>, blocks_for(n), kThreads,
               ptr<T>(x), ptr<T>(y), ptr<T>(d), n, element::FirstDerivative<Fn>{});
      else
        launch("map2_kernel", unary_name(op), map2_kernel<T, element::SecondDerivative<Fn>>, blocks_for(n), kThreads,
               ptr<T>(x), ptr<T>(y), ptr<T>(d), n, element::SecondDerivative<Fn>{});
    });
  });
  return d;
}

}  // namespace gradhpo::cuda
