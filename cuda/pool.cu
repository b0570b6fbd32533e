// Max and average pooling of planes (engine/ops/pool.cpp holds the rules and the CPU loops).
// Forward kernels: one thread per output. Adjoints are written as gathers, one thread per input
// element summing the windows that contain it in (oh, ow) order — the order in which the CPU
// adds them — so overlapping windows need no atomics and the sums are deterministic.
#include "../engine/backend.h"
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

// The outputs whose window contains input row h: oh in [first, last].
__device__ inline void windows_over(std::int64_t h, std::int64_t k, std::int64_t s, std::int64_t Ho, std::int64_t& first,
                                    std::int64_t& last) {
  first = h - k + 1 <= 0 ? 0 : (h - k + 1 + s - 1) / s;
  last = h / s < Ho - 1 ? h / s : Ho - 1;
}

template <class T>
__global__ void max_pool_kernel(PoolWindow g, std::int64_t n, const T* x, T* y, std::int32_t* arg) {
  GRADHPO_FOR_EACH(o, n) {
    const std::int64_t q = o % (g.Ho * g.Wo), p = o / (g.Ho * g.Wo), oh = q / g.Wo, ow = q % g.Wo;
    const T* xp = x + p * g.H * g.W;
    std::int64_t best = oh * g.stride * g.W + ow * g.stride;
    T m = xp[best];
    for (std::int64_t i = 0; i < g.kernel; ++i)
      for (std::int64_t j = 0; j < g.kernel; ++j) {
        const std::int64_t at = (oh * g.stride + i) * g.W + ow * g.stride + j;
        if (xp[at] > m) {  // strict: ties keep the first maximum, as on the CPU
          m = xp[at];
          best = at;
        }
      }
    y[o] = m;
    arg[o] = static_cast<std::int32_t>(best);
  }
}

template <class T>
__global__ void gather_kernel(PoolWindow g, std::int64_t n, std::int64_t arg_planes, const T* x, const std::int32_t* arg,
                              T* out) {
  GRADHPO_FOR_EACH(o, n) {
    const std::int64_t q_n = g.Ho * g.Wo, p = o / q_n, q = o % q_n;
    out[o] = x[p * g.H * g.W + arg[(p % arg_planes) * q_n + q]];
  }
}

template <class T>
__global__ void scatter_kernel(PoolWindow g, std::int64_t n, std::int64_t arg_planes, const T* gy,
                               const std::int32_t* arg, T* out) {
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t plane = g.H * g.W, p = i / plane, at = i % plane, h = at / g.W, w = at % g.W;
    std::int64_t oh0, oh1, ow0, ow1;
    windows_over(h, g.kernel, g.stride, g.Ho, oh0, oh1);
    windows_over(w, g.kernel, g.stride, g.Wo, ow0, ow1);
    const std::int32_t* a = arg + (p % arg_planes) * g.Ho * g.Wo;
    const T* gp = gy + p * g.Ho * g.Wo;
    T s = 0;
    for (std::int64_t oh = oh0; oh <= oh1; ++oh)
      for (std::int64_t ow = ow0; ow <= ow1; ++ow)
        if (a[oh * g.Wo + ow] == at) s += gp[oh * g.Wo + ow];
    out[i] = s;
  }
}

template <class T> __global__ void avg_pool_kernel(PoolWindow g, std::int64_t n, const T* x, T* y) {
  const T scale = T(1) / static_cast<T>(g.kernel * g.kernel);
  GRADHPO_FOR_EACH(o, n) {
    const std::int64_t q = o % (g.Ho * g.Wo), p = o / (g.Ho * g.Wo), oh = q / g.Wo, ow = q % g.Wo;
    const T* xp = x + p * g.H * g.W;
    T s = 0;
    for (std::int64_t i = 0; i < g.kernel; ++i)
      for (std::int64_t j = 0; j < g.kernel; ++j) s += xp[(oh * g.stride + i) * g.W + ow * g.stride + j];
    y[o] = s * scale;
  }
}

template <class T> __global__ void avg_pool_adjoint_kernel(PoolWindow g, std::int64_t n, const T* gy, T* xb) {
  const T scale = T(1) / static_cast<T>(g.kernel * g.kernel);
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t plane = g.H * g.W, p = i / plane, at = i % plane, h = at / g.W, w = at % g.W;
    std::int64_t oh0, oh1, ow0, ow1;
    windows_over(h, g.kernel, g.stride, g.Ho, oh0, oh1);
    windows_over(w, g.kernel, g.stride, g.Wo, ow0, ow1);
    const T* gp = gy + p * g.Ho * g.Wo;
    T s = 0;
    for (std::int64_t oh = oh0; oh <= oh1; ++oh)
      for (std::int64_t ow = ow0; ow <= ow1; ++ow) s += gp[oh * g.Wo + ow] * scale;
    xb[i] = s;
  }
}

}  // namespace

void max_pool(const PoolWindow& g, std::int64_t planes, const Tensor& x, Tensor& y, Tensor& arg) {
  const std::int64_t n = planes * g.Ho * g.Wo;
  dispatch_float(x.dtype(), "max_pool2d", [&](auto zero) {
    using T = decltype(zero);
    launch("max_pool_kernel", "max_pool2d", max_pool_kernel<T>, blocks_for(n), kThreads, g, n, ptr<T>(x), ptr<T>(y),
           ptr<std::int32_t>(arg));
  });
}

namespace {
// One launch of gather_kernel or scatter_kernel (same parameters) over n threads.
template <class K32, class K64>
void argmax_pass(const char* name, K32 k32, K64 k64, const PoolWindow& g, std::int64_t n, std::int64_t arg_planes,
                 const Tensor& in, const Tensor& arg, Tensor& out) {
  if (in.dtype() == DType::f32)
    launch(name, "max_pool2d", k32, blocks_for(n), kThreads, g, n, arg_planes, ptr<float>(in), ptr<std::int32_t>(arg),
           ptr<float>(out));
  else
    launch(name, "max_pool2d", k64, blocks_for(n), kThreads, g, n, arg_planes, ptr<double>(in), ptr<std::int32_t>(arg),
           ptr<double>(out));
}
}  // namespace

void pool_gather(const PoolWindow& g, std::int64_t planes, std::int64_t arg_planes, const Tensor& x, const Tensor& arg,
                 Tensor& out) {
  argmax_pass("gather_kernel", gather_kernel<float>, gather_kernel<double>, g, planes * g.Ho * g.Wo, arg_planes, x, arg,
              out);
}

void pool_scatter(const PoolWindow& g, std::int64_t planes, std::int64_t arg_planes, const Tensor& gy, const Tensor& arg,
                  Tensor& out) {
  argmax_pass("scatter_kernel", scatter_kernel<float>, scatter_kernel<double>, g, planes * g.H * g.W, arg_planes, gy,
              arg, out);
}

void avg_pool(const PoolWindow& g, std::int64_t planes, const Tensor& x, Tensor& y) {
  const std::int64_t n = planes * g.Ho * g.Wo;
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto zero) {
    using T = decltype(zero);
    launch("avg_pool_kernel", "avg_pool2d", avg_pool_kernel<T>, blocks_for(n), kThreads, g, n, ptr<T>(x), ptr<T>(y));
  });
}

void avg_pool_adjoint(const PoolWindow& g, std::int64_t planes, const Tensor& gy, Tensor& xb) {
  const std::int64_t n = planes * g.H * g.W;
  dispatch_float(gy.dtype(), "avg_pool2d", [&](auto zero) {
    using T = decltype(zero);
    launch("avg_pool_adjoint_kernel", "avg_pool2d", avg_pool_adjoint_kernel<T>, blocks_for(n), kThreads, g, n,
           ptr<T>(gy), ptr<T>(xb));
  });
}

}  // namespace gradhpo::cuda
