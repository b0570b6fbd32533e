// The image loop shared by the convolution kernels (im2col.cpp, conv_direct.cpp): images split
// over OpenMP threads in contiguous chunks, per-thread scratch from the storage pool, a
// pthreads OpenBLAS held to one thread while the loop runs, and the zero-padded copy of an
// image that both read their patches from. Internal to the kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

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

// ---- the padded input ------------------------------------------------------------------------------
// An image [C, H, W] zero-padded by (ph, pw) and split into s × s phases (s the stride), so that
// output pixels next to each other read inputs next to each other: padded element (c, r, q) is
// at ((c·s + r % s)·s + q % s)·Hq·Wq + (r / s)·Wq + q / s. Output pixel (oh, ow) then reads tap
// (i, j) of channel c at tap(c, i, j) + oh·Wq + ow. With s = 1 this is the padded image itself.

struct Padded {
  std::int64_t C, H, W, ph, pw, s;
  std::int64_t Hq, Wq;  // rows and columns of one phase

  // Column phase b takes source columns first[b], first[b] + s, … (count[b] of them) to its
  // columns from start[b] on: the same for every row, so worked out once (divisions per row
  // cost more than the copy of a 32-pixel row).
  std::vector<std::int64_t> first, start, count;

  /// Rows are a multiple of `align` elements apart (the columns past a padded row stay zero,
  /// like its border), so that with a 64-byte-aligned buffer every row starts on a boundary.
  Padded(std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t ph, std::int64_t pw, std::int64_t s,
         std::int64_t align = 1)
      : C(C), H(H), W(W), ph(ph), pw(pw), s(s), Hq((H + 2 * ph + s - 1) / s),
        Wq(((W + 2 * pw + s - 1) / s + align - 1) / align * align) {
    for (std::int64_t b = 0; b < s; ++b) {
      const std::int64_t w0 = ((b - pw) % s + s) % s;  // first w with w + pw ≡ b (mod s)
      first.push_back(w0);
      start.push_back(b * plane() + (w0 + pw) / s);
      count.push_back(w0 < W ? (W - w0 + s - 1) / s : 0);
    }
  }
  std::int64_t plane() const { return Hq * Wq; }
  std::int64_t size() const { return C * s * s * plane(); }
  std::int64_t tap(std::int64_t c, std::int64_t i, std::int64_t j) const {
    return ((c * s + i % s) * s + j % s) * plane() + (i / s) * Wq + j / s;
  }
  /// Writes image x into the interior of dst (whose border stays as it is: zero).
  template <class T> void fill(const T* x, T* dst) const {
    if (s == 1) {
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t h = 0; h < H; ++h) copy_row(dst + (c * Hq + h + ph) * Wq + pw, x + (c * H + h) * W, W);
      return;
    }
    for (std::int64_t c = 0; c < C; ++c) {
      std::int64_t a = ph % s, rr = ph / s;  // row phase and row within it of padded row h + ph
      for (std::int64_t h = 0; h < H; ++h) {
        const T* src = x + (c * H + h) * W;
        T* row = dst + (c * s + a) * s * plane() + rr * Wq;
        for (std::size_t b = 0; b < first.size(); ++b) {
          T* __restrict d = row + start[b];
          const T* __restrict from = src + first[b];
          if (s == 2)  // a constant stride, which GCC vectorizes (permutes of two loads)
            for (std::int64_t k = 0; k < count[b]; ++k) d[k] = from[2 * k];
          else
            for (std::int64_t k = 0; k < count[b]; ++k) d[k] = from[k * s];
        }
        if (++a == s) a = 0, ++rr;
      }
    }
  }
};

}  // namespace gradhpo::kernels::image_loop
