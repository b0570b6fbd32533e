// Sums over the middle axis of an [A, B, C] view and its adjoint, the repeat over a new middle
// axis (engine/kernels/math.h: reduce_middle, expand_middle).
//
// Deterministic: every output is summed in one fixed order that depends only on the shape, never
// on scheduling (no atomics), so two runs give identical bits, as on the CPU.
//   C == 1 (row sums, the whole-tensor sum): one block per row; thread t sums b = t, t + 256, ...
//           then a fixed shared-memory tree combines the 256 partial sums.
//   C > 1:  one thread per output (a, c), summing b = 0..B-1 in order; neighbouring threads read
//           neighbouring addresses.
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

template <class T> __global__ void row_sum_kernel(const T* x, T* out, std::int64_t B, T scale) {
  const T* row = x + blockIdx.x * B;
  T s = 0;
  for (std::int64_t b = threadIdx.x; b < B; b += kThreads) s += row[b];
  s = block_sum(s);
  if (threadIdx.x == 0) out[blockIdx.x] = scale * s;
}

template <class T>
__global__ void column_sum_kernel(const T* x, T* out, std::int64_t A, std::int64_t B, std::int64_t C, T scale) {
  GRADHPO_FOR_EACH(i, A * C) {
    const std::int64_t a = i / C, c = i % C;
    const T* p = x + a * B * C + c;
    T s = 0;
    for (std::int64_t b = 0; b < B; ++b) s += p[b * C];
    out[i] = scale * s;
  }
}

template <class T>
__global__ void expand_kernel(const T* x, T* out, std::int64_t B, std::int64_t C, std::int64_t n, T scale) {
  GRADHPO_FOR_EACH(i, n) {
    const std::int64_t c = i % C, a = i / (B * C);
    out[i] = scale * x[a * C + c];
  }
}

}  // namespace

Tensor reduce_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale) {
  Tensor out = Tensor::empty(Shape{A * C}, x.dtype(), Device::cuda);
  if (A * C == 0) return out;  // a grid of no blocks is a launch error
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T s = static_cast<T>(scale);
    if (C == 1 && A <= 0x7fffffff)
      launch("row_sum_kernel", "reduce", row_sum_kernel<T>, static_cast<unsigned>(A), kThreads, ptr<T>(x), ptr<T>(out), B, s);
    else
      launch("column_sum_kernel", "reduce", column_sum_kernel<T>, blocks_for(A * C), kThreads, ptr<T>(x), ptr<T>(out), A,
             B, C, s);
  });
  return out;
}

Tensor expand_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale) {
  Tensor out = Tensor::empty(Shape{A * B * C}, x.dtype(), Device::cuda);
  const std::int64_t n = A * B * C;
  dispatch_float(x.dtype(), "expand", [&](auto zero) {
    using T = decltype(zero);
    launch("expand_kernel", "expand", expand_kernel<T>, blocks_for(n), kThreads, ptr<T>(x), ptr<T>(out), B, C, n,
           static_cast<T>(scale));
  });
  return out;
}

}  // namespace gradhpo::cuda
