// log_softmax over rows of [B, C] logits with its tangent and adjoint rules, and the label
// gather/scatter of `pick` (engine/ops/softmax.cpp holds the formulas and the CPU loops; these
// kernels follow them line by line). One thread per row: C is a class count, small next to B·K.
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

using std::exp;
using std::log;

template <class T> __global__ void log_softmax_kernel(const T* x, T* y, std::int64_t B, std::int64_t C) {
  GRADHPO_FOR_EACH(i, B) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    T m = xi[0];
    for (std::int64_t j = 1; j < C; ++j) m = xi[j] > m ? xi[j] : m;
    T s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += exp(xi[j] - m);
    const T lse = m + log(s);
    for (std::int64_t j = 0; j < C; ++j) yi[j] = xi[j] - lse;
  }
}

// out_k = ẋ_k − rowsum(p ⊙ ẋ_k), one thread per (direction, row).
template <class T>
__global__ void log_softmax_tangent_kernel(const T* y, const T* xt, T* out, std::int64_t K, std::int64_t B, std::int64_t C) {
  GRADHPO_FOR_EACH(r, K * B) {
    const T* yi = y + (r % B) * C;
    const T* ti = xt + r * C;
    T* oi = out + r * C;
    T s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += exp(yi[j]) * ti[j];
    for (std::int64_t j = 0; j < C; ++j) oi[j] = ti[j] - s;
  }
}

// x̄ = ḡ − p Σḡ, and its tangent ġ − ṗ s − p ṡ (s = Σḡ, ṡ = Σġ, ṗ = p ⊙ ẏ); gt, yt may be null.
template <class T>
__global__ void log_softmax_backward_kernel(const T* y, const T* g, const T* gt, const T* yt, T* xb, T* xbt,
                                            std::int64_t K, std::int64_t B, std::int64_t C) {
  GRADHPO_FOR_EACH(i, B) {
    T s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += g[i * C + j];
    for (std::int64_t j = 0; j < C; ++j) xb[i * C + j] = g[i * C + j] - exp(y[i * C + j]) * s;
    for (std::int64_t k = 0; k < K; ++k) {
      const std::int64_t row = (k * B + i) * C;
      T sdot = 0;
      if (gt)
        for (std::int64_t j = 0; j < C; ++j) sdot += gt[row + j];
      for (std::int64_t j = 0; j < C; ++j) {
        const T p = exp(y[i * C + j]);
        T v = -p * sdot;
        if (gt) v += gt[row + j];
        if (yt) v -= p * yt[row + j] * s;
        xbt[row + j] = v;
      }
    }
  }
}

template <class T>
__global__ void gather_kernel(const T* x, const std::int32_t* labels, T* out, std::int64_t rows, std::int64_t B,
                              std::int64_t C) {
  GRADHPO_FOR_EACH(r, rows) out[r] = x[r * C + labels[r % B]];
}

template <class T>
__global__ void scatter_kernel(const T* g, const std::int32_t* labels, T* out, std::int64_t rows, std::int64_t B,
                               std::int64_t C) {
  GRADHPO_FOR_EACH(r, rows) out[r * C + labels[r % B]] = g[r];
}

}  // namespace

Tensor log_softmax(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  const std::int64_t B = x.dim(0), C = x.dim(1);
  dispatch_float(x.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    launch("log_softmax_kernel", "log_softmax", log_softmax_kernel<T>, blocks_for(B), kThreads, ptr<T>(x), ptr<T>(y), B, C);
  });
  return y;
}

Tensor log_softmax_tangent(const Tensor& y, const Tensor& xt) {
  const std::int64_t K = xt.dim(0), B = y.dim(0), C = y.dim(1);
  Tensor out = Tensor::empty(Shape{K, B * C}, y.dtype(), Device::cuda);
  dispatch_float(y.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    launch("log_softmax_tangent_kernel", "log_softmax", log_softmax_tangent_kernel<T>, blocks_for(K * B), kThreads,
           ptr<T>(y), ptr<T>(xt), ptr<T>(out), K, B, C);
  });
  return out;
}

void log_softmax_backward(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                          Tensor& xb_tangent) {
  const std::int64_t K = xb_tangent.defined() ? xb_tangent.dim(0) : 0, B = y.dim(0), C = y.dim(1);
  dispatch_float(y.dtype(), "log_softmax", [&](auto zero) {
    using T = decltype(zero);
    launch("log_softmax_backward_kernel", "log_softmax", log_softmax_backward_kernel<T>, blocks_for(B), kThreads,
           ptr<T>(y), ptr<T>(g), ptr_or_null<T>(gt), ptr_or_null<T>(yt), ptr<T>(xb),
           xb_tangent.defined() ? ptr<T>(xb_tangent) : nullptr, K, B, C);
  });
}

Tensor gather(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C) {
  Tensor out = Tensor::empty(Shape{rows}, x.dtype(), Device::cuda);
  dispatch_float(x.dtype(), "pick", [&](auto zero) {
    using T = decltype(zero);
    launch("gather_kernel", "pick", gather_kernel<T>, blocks_for(rows), kThreads, ptr<T>(x), ptr<std::int32_t>(labels),
           ptr<T>(out), rows, labels.numel(), C);
  });
  return out;
}

Tensor scatter(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C) {
  Tensor out = Tensor::zeros(Shape{rows * C}, g.dtype(), Device::cuda);
  dispatch_float(g.dtype(), "pick", [&](auto zero) {
    using T = decltype(zero);
    launch("scatter_kernel", "pick", scatter_kernel<T>, blocks_for(rows), kThreads, ptr<T>(g), ptr<std::int32_t>(labels),
           ptr<T>(out), rows, labels.numel(), C);
  });
  return out;
}

}  // namespace gradhpo::cuda
