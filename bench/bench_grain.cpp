// The parallel-region threshold (engine/kernels/cpu.h, kParallelGrain), measured: an elementwise
// pass of the kind the engine runs outside its GEMMs (relu's adjoint, out = g ⊙ [x > 0], float32)
// over n elements, on one thread and in an OpenMP parallel region of 2 threads (times are per
// iteration of `reps` passes; best_ns_per_pass is one pass) that split it the
// way parallel_chunks does. Names "grain/<n>/threads:<t>"; counter `vs_serial` (the region's time
// over the serial one, interleaved in the same run, wall and `vs_serial_cpu`): below 1 the
// region pays for itself. kParallelGrain should sit where vs_serial crosses 1 on an idle machine.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "bench_common.h"

namespace {

void pass(const float* g, const float* x, float* out, std::int64_t begin, std::int64_t end) {
  for (std::int64_t i = begin; i < end; ++i) out[i] = x[i] > 0.0f ? g[i] : 0.0f;
}

void grain(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  std::vector<float> g(static_cast<std::size_t>(n), 0.5f), x(static_cast<std::size_t>(n)), out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = (i % 3) ? 1.0f : -1.0f;
  auto serial = [&] { pass(g.data(), x.data(), out.data(), 0, n); };
  auto region = [&] {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
      const std::int64_t t = omp_get_num_threads(), id = omp_get_thread_num(), chunk = (n + t - 1) / t;
      const std::int64_t b = id * chunk, e = std::min(n, b + chunk);
      if (b < e) pass(g.data(), x.data(), out.data(), b, e);
    }
#else
    serial();
#endif
  };
  // Many repetitions per timing, so that one timing is well above the clock's resolution.
  const int reps = static_cast<int>(std::max<std::int64_t>(1, (1 << 22) / n));
  auto many = [&](auto&& f) { return [&, f] { for (int r = 0; r < reps; ++r) f(); }; };
  const double best = threads == 1 ? gradhpo::bench::timed_pair(state, many(serial), [] {}, nullptr)
                                    : gradhpo::bench::timed_pair(state, many(region), many(serial), "vs_serial");
  state.counters["best_ns_per_pass"] = 1e9 * best / reps;
}

}  // namespace

int main(int argc, char** argv) {
  for (std::int64_t n : {2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 1048576})
    for (int t : {1, 2})
      benchmark::RegisterBenchmark(("grain/" + std::to_string(n) + "/threads:" + std::to_string(t)).c_str(), grain)
          ->Args({n, t})
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.2);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
