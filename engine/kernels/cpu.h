// Shared helpers of the CPU kernels: Eigen views of tensor memory and an OpenMP loop that only
// goes parallel when the work is large enough to pay for waking the threads.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <initializer_list>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradhpo::kernels {

template <class T> using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using MatrixMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

/// Which of `choices` environment variable `name` names: 0 when it is unset, empty or "auto",
/// else 1 + the choice's index. Any other value throws Error naming the variable and the
/// choices (GRADHPO_GEMM, GRADHPO_CONV: a kernel's forced implementation).
int env_choice(const char* name, std::initializer_list<const char*> choices);

/// The size of one core's L2 cache in bytes, read at run time (sysconf); 256 KiB where the
/// system does not say. Kernels size their cache blocks by it instead of by a constant.
std::int64_t l2_cache_bytes();

/// Elements below which an elementwise loop stays on one thread (threads_for's fixed bound).
constexpr std::int64_t kParallelGrain = 1 << 15;

/// parallel_chunks's bound: kParallelGrain, or more where starting a team of threads costs more —
/// with OMP_WAIT_POLICY=PASSIVE the team sleeps between regions and each region must wake it,
/// ~10–50 µs against ~1 µs when it spins. Measured once per process (the fastest of a few empty
/// parallel regions), as the elements an elementwise loop gets through in 4× that time at
/// 0.5 ns each. Free to differ between processes: parallel_chunks's results do not depend on
/// how the elements are split. threads_for keeps the fixed bound (its loops' sums may depend on it).
std::int64_t parallel_grain();

/// Threads an OpenMP loop over `work` elements should use: 1 for small work or inside a
/// parallel region (no nested teams), else all of them.
inline int threads_for(std::int64_t work) {
#ifdef _OPENMP
  if (work < kParallelGrain || omp_in_parallel()) return 1;
  return omp_get_max_threads();
#else
  (void)work;
  return 1;
#endif
}

/// Calls body(begin, end) over [0, n) in contiguous chunks, on all OpenMP threads when n is
/// large. Each element is handled by exactly one chunk, so results do not depend on threads.
template <class Body> void parallel_chunks(std::int64_t n, Body&& body) {
#ifdef _OPENMP
  if (n >= kParallelGrain && omp_get_max_threads() > 1 && !omp_in_parallel() && n >= parallel_grain()) {
#pragma omp parallel
    {
      const std::int64_t threads = omp_get_num_threads();
      const std::int64_t id = omp_get_thread_num();
      const std::int64_t chunk = (n + threads - 1) / threads;
      const std::int64_t begin = id * chunk;
      const std::int64_t end = begin + chunk < n ? begin + chunk : n;
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(std::int64_t{0}, n);
}

}  // namespace gradhpo::kernels
