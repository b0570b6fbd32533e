// The image loop shared by the convolution kernels (im2col.cpp, conv_direct.cpp): images split
// over OpenMP threads in contiguous chunks, per-thread scratch from the storage pool, and a
// pthreads OpenBLAS held to one thread while the loop runs. Internal to the kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../tensor.h"
#include "cpu.h"

// Note [BLAS threads]
// With EIGEN_USE_BLAS, Eigen hands every float/double product to the BLAS. A pthreads OpenBLAS
// does not know it is called from inside an OpenMP region and starts its own threads for large
// products: two image threads × two BLAS threads on two cores, with spinning waits. While a
// convolution's image loop runs, OpenBLAS is therefore set to one thread, and restored after.
// The OpenBLAS entry points are weak references, so this costs nothing (and links) when Eigen
// uses its own GEMM or another BLAS; an OpenMP OpenBLAS (openblas_get_parallel() == 2) already
// runs single-threaded inside a parallel region and is left alone. This assumes, as the whole
// engine does, that one thread drives the tape at a time.
#if defined(EIGEN_USE_BLAS) && defined(__GNUC__)
extern "C" {
__attribute__((weak)) int openblas_get_num_threads(void);
__attribute__((weak)) void openblas_set_num_threads(int);
__attribute__((weak)) int openblas_get_parallel(void);
}
#define GRADHPO_OPENBLAS_WEAK 1
#endif

namespace gradhpo::kernels::image_loop {

class SerialBlas {  // See Note [BLAS threads]
 public:
  explicit SerialBlas(bool active) {
#ifdef GRADHPO_OPENBLAS_WEAK
    if (active && openblas_get_parallel && openblas_get_num_threads && openblas_set_num_threads &&
        openblas_get_parallel() == 1) {
      saved_ = openblas_get_num_threads();
      if (saved_ > 1) openblas_set_num_threads(1);
    }
#else
    (void)active;
#endif
  }
  ~SerialBlas() {
#ifdef GRADHPO_OPENBLAS_WEAK
    if (saved_ > 1) openblas_set_num_threads(saved_);
#endif
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_ = 0;
};

/// Threads for a loop over `count` images doing `flops` in all: one when the work is too small
/// to pay for waking a thread, or when already inside a parallel region.
inline int image_threads(std::int64_t count, double flops) {
#ifdef _OPENMP
  if (count < 2 || flops < 4e5 || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), count));
#else
  (void)count, (void)flops;
  return 1;
#endif
}

/// Runs body(thread, begin, end) over contiguous chunks of [0, count) on `threads` threads.
/// The partition depends only on (count, threads), so results are reproducible.
template <class Body> void for_images(int threads, std::int64_t count, Body&& body) {
  if (threads <= 1) {
    body(0, std::int64_t{0}, count);
    return;
  }
  SerialBlas serial(true);
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t begin = count * t / nt, end = count * (t + 1) / nt;
    if (begin < end) body(static_cast<int>(t), begin, end);
  }
#else
  body(0, std::int64_t{0}, count);
#endif
}

/// Per-thread scratch: `threads` slices of `per_thread` elements from one pooled tensor, each
/// slice starting on a 64-byte boundary.
template <class T> class Scratch {
 public:
  Scratch(int threads, std::int64_t per_thread) {
    stride_ = (std::max<std::int64_t>(per_thread, 1) + 15) / 16 * 16;
    if (per_thread > 0) buf_ = Tensor::empty(Shape{stride_ * threads}, dtype_of<T>());
  }
  T* operator()(int thread) { return buf_.defined() ? buf_.data<T>() + stride_ * thread : nullptr; }

 private:
  Tensor buf_;
  std::int64_t stride_ = 0;
};

/// d[0, n) = s[0, n) for the short rows of images and im2col (5 to 34 elements for LeNet and
/// CIFAR networks): whole 64-byte moves, the last one overlapping the previous instead of a scalar
/// tail loop (a tail of up to 15 floats cost more than the vector part for these rows).
template <class T> inline void copy_row(T* __restrict d, const T* __restrict s, std::int64_t n) {
  constexpr std::int64_t V = 64 / sizeof(T);
  auto chunks = [&](auto bytes) {
    constexpr std::int64_t v = static_cast<std::int64_t>(decltype(bytes)::value / sizeof(T));
    std::int64_t i = 0;
    for (; i + v <= n; i += v) std::memcpy(d + i, s + i, decltype(bytes)::value);
    if (i < n) std::memcpy(d + n - v, s + n - v, decltype(bytes)::value);
  };
  if (n >= V) return chunks(std::integral_constant<std::size_t, 64>{});
  if (n >= V / 2) return chunks(std::integral_constant<std::size_t, 32>{});
  if (n >= V / 4) return chunks(std::integral_constant<std::size_t, 16>{});
  for (std::int64_t i = 0; i < n; ++i) d[i] = s[i];
}

}  // namespace gradhpo::kernels::image_loop
