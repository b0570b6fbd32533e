// What every CUDA kernel file shares: typed device pointers of tensors, the launch shape of a
// grid-stride loop, and the launch itself on gradhpo's stream with its error check.
#pragma once

#include <cstdint>

#include "../engine/tensor.h"
#include "check.h"
#include "context.h"

namespace gradhpo::cuda {

/// Device pointer to a tensor's first element (Tensor::data<T>() is host-only by design).
template <class T> T* ptr(Tensor& t) { return static_cast<T*>(t.raw()); }
template <class T> const T* ptr(const Tensor& t) { return static_cast<const T*>(t.raw()); }
/// Null for an undefined tensor (a zero tangent), else the device pointer.
template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? ptr<T>(t) : nullptr; }

constexpr int kThreads = 256;

/// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
inline unsigned blocks_for(std::int64_t n) {
  const std::int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

/// kernel<<<blocks, threads, 0, stream>>>(args...) on gradhpo's stream, checked; `name` and `op`
/// are what an error message reports.
template <class... Params, class... Args>
void launch(const char* name, const char* op, void (*kernel)(Params...), dim3 blocks, unsigned threads,
            Args&&... args) {
  kernel<<<blocks, threads, 0, context(op).stream>>>(static_cast<Params>(args)...);
  check_launch(name, op);
}

/// v combined with op over the kThreads threads of a block, in a fixed tree order
/// (deterministic); every thread gets the result. Call from all threads of the block.
template <class T, class Op> __device__ T block_reduce(T v, Op op) {
  __shared__ T partial[kThreads];
  __syncthreads();  // a previous call's readers are done with `partial`
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] = op(partial[threadIdx.x], partial[threadIdx.x + width]);
    __syncthreads();
  }
  return partial[0];
}

struct Plus {
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};

/// The sum of v over the block's threads (block_reduce with +).
template <class T> __device__ T block_sum(T v) { return block_reduce(v, Plus{}); }

/// A grid-stride loop over [0, n).
#define GRADHPO_FOR_EACH(i, n) \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); i += std::int64_t(gridDim.x) * blockDim.x)

}  // namespace gradhpo::cuda
