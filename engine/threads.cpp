#include "threads.h"

#include <Eigen/Core>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "error.h"

// OpenBLAS's own thread count, when a pthreads OpenBLAS is linked (a weak reference: absent,
// it is null and nothing is called; an OpenMP OpenBLAS follows omp_set_num_threads).
#if defined(__GNUC__)
extern "C" __attribute__((weak)) void openblas_set_num_threads(int);
#endif

namespace gradhpo {

namespace {

/// OpenMP's thread count before any call here changed it: the default that n = 0 restores.
int default_threads() {
#ifdef _OPENMP
  static const int threads = omp_get_max_threads();
#else
  static const int threads = 1;
#endif
  return threads;
}

// Read at start-up (whenever this file is linked, set_num_threads is), before anyone changes it.
[[maybe_unused]] const int start_threads = default_threads();

}  // namespace

void set_num_threads(int n) {
  require(n >= 0, "set_num_threads: " + std::to_string(n) + " threads (expected >= 1, or 0 for the default)");
  const int threads = n == 0 ? default_threads() : n;
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
#if defined(__GNUC__)
  if (openblas_set_num_threads) openblas_set_num_threads(threads);
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace gradhpo
