#include "cpu.h"

#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "../error.h"

namespace gradhpo::kernels {

int env_choice(const char* name, std::initializer_list<const char*> choices) {
  const char* env = std::getenv(name);
  const std::string v = env ? env : "";
  if (v.empty() || v == "auto") return 0;
  std::string expected;  // "a, b or auto"
  int index = 1;
  for (const char* c : choices) {
    if (v == c) return index;
    expected += std::string(c) + (index < static_cast<int>(choices.size()) ? ", " : " or auto");
    ++index;
  }
  throw Error(std::string(name) + ": expected " + expected + ", got '" + v + "'");
}

std::int64_t l2_cache_bytes() {
  static const std::int64_t bytes = [] {
    const long l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? std::int64_t{l2} : std::int64_t{256 * 1024};  // unknown: assume a small L2
  }();
  return bytes;
}

std::int64_t parallel_grain() {
#ifdef _OPENMP
  static const std::int64_t grain = [] {
    // Inside a parallel region a nested one has a team of one and would measure nothing.
    if (omp_get_max_threads() < 2 || omp_in_parallel()) return kParallelGrain;
    double fastest = 1e9;
    for (int i = 0; i < 16; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
      {
        [[maybe_unused]] volatile int touch = omp_get_thread_num();
      }
      fastest = std::min(fastest, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double elements = 4 * fastest / 0.5e-9;
    return std::max(kParallelGrain, static_cast<std::int64_t>(std::min(elements, 1e9)));
  }();
  return grain;
#else
  return kParallelGrain;
#endif
}

}  // namespace gradhpo::kernels
