// Whole-vector kernels (engine/kernels/vector.h) on the GPU: the in-place optimizer updates around
// the same formulas as the CPU loops (engine/kernels/optim_element.h), batch norm's running
// statistics, and the reductions hpo/ asks for (dot, max |x|, the first non-finite entry).
//
// Deterministic reductions: a fixed grid of kReduceBlocks blocks of kThreads threads (whatever the
// size or the GPU), thread t of block b summing elements i ≡ b·kThreads + t in index order, then a
// fixed tree in each block and one more over the block partials. The order depends on the numel
// alone, so two runs give the same bits (not the CPU's bits: its sum runs in index order).
#include <math_constants.h>  // CUDART_INF

#include "../engine/kernels/optim_element.h"
#include "kernels.h"
#include "launch.cuh"

namespace gradhpo::cuda {
namespace {

constexpr unsigned kReduceBlocks = 256;
static_assert(kReduceBlocks == kThreads, "the final pass reads one partial per thread");

struct MaxOp {
  __device__ double operator()(double a, double b) const { return a > b ? a : b; }
};
struct MinOp {
  __device__ double operator()(double a, double b) const { return a < b ? a : b; }
};

template <class T> __global__ void dot_partial_kernel(const T* x, const T* y, std::int64_t n, double* partial) {
  double s = 0;
  GRADHPO_FOR_EACH(i, n) s += static_cast<double>(x[i]) * static_cast<double>(y[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T> __global__ void max_abs_partial_kernel(const T* x, std::int64_t n, double* partial) {
  double m = 0;
  GRADHPO_FOR_EACH(i, n) {
    const double a = fabs(static_cast<double>(x[i]));
    m = a > m ? a : m;
  }
  m = block_reduce(m, MaxOp{});
  if (threadIdx.x == 0) partial[blockIdx.x] = m;
}

// The smallest non-finite index as a double (exact below 2^53), +inf when there is none.
template <class T> __global__ void non_finite_partial_kernel(const T* x, std::int64_t n, double* partial) {
  double first = CUDART_INF;
  GRADHPO_FOR_EACH(i, n) {
    if (!isfinite(x[i])) {
      first = static_cast<double>(i);
      break;  // this thread's later elements have larger indices
    }
  }
  first = block_reduce(first, MinOp{});
  if (threadIdx.x == 0) partial[blockIdx.x] = first;
}

template <class Op> __global__ void finish_kernel(const double* partial, double* out, Op op) {
  const double r = block_reduce(partial[threadIdx.x], op);
  if (threadIdx.x == 0) *out = r;
}

/// Runs `partial_kernel` into kReduceBlocks partials, combines them with `op`, and returns the
/// result on the host (pooled scratch: no allocation in steady state).
template <class Op, class Launch> double reduce_to_host(const char* op_name, Op op, Launch&& partial_kernel) {
  Tensor partial = Tensor::empty(Shape{kReduceBlocks}, DType::f64, Device::cuda);
  Tensor out = Tensor::empty(Shape{1}, DType::f64, Device::cuda);
  partial_kernel(ptr<double>(partial));
  launch("finish_kernel", op_name, finish_kernel<Op>, 1, kThreads, ptr<double>(partial), ptr<double>(out), op);
  return out.item();  // copies to the host, after the stream's work
}

template <class T> __global__ void clamp_kernel(T* x, std::int64_t n, T lo, T hi) {
  GRADHPO_FOR_EACH(i, n) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

template <class T> __global__ void lerp_kernel(T* acc, const T* x, std::int64_t n, double m) {
  GRADHPO_FOR_EACH(i, n) acc[i] = static_cast<T>((1 - m) * acc[i] + m * x[i]);
}

template <class T>
__global__ void sgd_kernel(T* w, T* v, const T* g, const T* mask, std::int64_t n, T lr, T mom, T wd) {
  GRADHPO_FOR_EACH(i, n) kernels::optimizer::sgd(w[i], v[i], g[i], lr, mom, mask ? T(wd * mask[i]) : wd);
}

template <class T>
__global__ void adam_kernel(T* w, T* m, T* v, const T* g, const T* mask, std::int64_t n, T lr, T b1, T b2, T eps, T wd,
                            bool decoupled, bool eps_inside_sqrt, T bc1, T sqrt_bc2) {
  const kernels::optimizer::AdamCorrections<T, T> c{bc1, sqrt_bc2};
  GRADHPO_FOR_EACH(i, n)
  kernels::optimizer::adam(w[i], m[i], v[i], g[i], lr, b1, b2, eps, mask ? T(wd * mask[i]) : wd, decoupled, c,
                           eps_inside_sqrt);
}

}  // namespace

double dot(const Tensor& x, const Tensor& y) {
  return dispatch_float(x.dtype(), "dot", [&](auto zero) {
    using T = decltype(zero);
    return reduce_to_host("dot", Plus{}, [&](double* partial) {
      launch("dot_partial_kernel", "dot", dot_partial_kernel<T>, kReduceBlocks, kThreads, ptr<T>(x), ptr<T>(y),
             x.numel(), partial);
    });
  });
}

double max_abs(const Tensor& x) {
  return dispatch_float(x.dtype(), "max_abs", [&](auto zero) {
    using T = decltype(zero);
    return reduce_to_host("max_abs", MaxOp{}, [&](double* partial) {
      launch("max_abs_partial_kernel", "max_abs", max_abs_partial_kernel<T>, kReduceBlocks, kThreads, ptr<T>(x),
             x.numel(), partial);
    });
  });
}

std::int64_t first_non_finite(const Tensor& x) {
  const double first = dispatch_float(x.dtype(), "first_non_finite", [&](auto zero) {
    using T = decltype(zero);
    return reduce_to_host("first_non_finite", MinOp{}, [&](double* partial) {
      launch("non_finite_partial_kernel", "first_non_finite", non_finite_partial_kernel<T>, kReduceBlocks, kThreads,
             ptr<T>(x), x.numel(), partial);
    });
  });
  return first < static_cast<double>(x.numel()) ? static_cast<std::int64_t>(first) : -1;
}

void clamp(Tensor& x, double lo, double hi) {
  const std::int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "clamp", [&](auto zero) {
    using T = decltype(zero);
    launch("clamp_kernel", "clamp", clamp_kernel<T>, blocks_for(n), kThreads, ptr<T>(x), n, static_cast<T>(lo),
           static_cast<T>(hi));
  });
}

void lerp(Tensor& acc, const Tensor& x, double m) {
  const std::int64_t n = acc.numel();
  if (n == 0) return;
  dispatch_float(acc.dtype(), "lerp", [&](auto zero) {
    using T = decltype(zero);
    launch("lerp_kernel", "lerp", lerp_kernel<T>, blocks_for(n), kThreads, ptr<T>(acc), ptr<T>(x), n, m);
  });
}

void sgd_update(Tensor& w, Tensor& v, const Tensor& g, const Tensor& decay_mask, const kernels::SgdUpdate& h) {
  const std::int64_t n = w.numel();
  if (n == 0) return;
  dispatch_float(w.dtype(), "Sgd::step", [&](auto zero) {
    using T = decltype(zero);
    launch("sgd_kernel", "Sgd::step", sgd_kernel<T>, blocks_for(n), kThreads, ptr<T>(w), ptr<T>(v), ptr<T>(g),
           ptr_or_null<T>(decay_mask), n, static_cast<T>(h.lr), static_cast<T>(h.momentum),
           static_cast<T>(h.weight_decay));
  });
}

void adam_update(Tensor& w, Tensor& m, Tensor& v, const Tensor& g, const Tensor& decay_mask,
                 const kernels::AdamUpdate& h) {
  const std::int64_t n = w.numel();
  if (n == 0) return;
  dispatch_float(w.dtype(), "Adam::step", [&](auto zero) {
    using T = decltype(zero);
    launch("adam_kernel", "Adam::step", adam_kernel<T>, blocks_for(n), kThreads, ptr<T>(w), ptr<T>(m), ptr<T>(v),
           ptr<T>(g), ptr_or_null<T>(decay_mask), n, static_cast<T>(h.lr), static_cast<T>(h.beta1),
           static_cast<T>(h.beta2), static_cast<T>(h.eps), static_cast<T>(h.weight_decay), h.decoupled,
           h.eps_inside_sqrt, static_cast<T>(h.bc1), static_cast<T>(h.sqrt_bc2));
  });
}

}  // namespace gradhpo::cuda
