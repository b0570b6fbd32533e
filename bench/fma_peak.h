// The machine's arithmetic peak, measured: how many floating-point operations per second fused
// multiply-adds reach on this CPU, with the vector width this program was compiled for, on a
// given number of threads. The benchmarks divide a pass's multiply-adds by it to say how close
// a time is to what the hardware can do at all (fma_floor_ms), which no GEMM library, ours or
// PyTorch's, can beat.
//
// Measured, not computed from a data sheet: the clock (turbo, a VM's share of the core) and
// whether a 512-bit FMA issues once per cycle or as two 256-bit halves (Zen 4) differ from
// machine to machine.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradhpo::bench {

namespace detail {

/// FLOP/s of one timing: every thread runs kChains independent chains acc = acc·a + b of SIMD
/// packets (enough chains to cover the FMA latency on every current core), best of 5.
template <class T> double measure_fma_peak(int threads) {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  constexpr int kChains = 12;
  constexpr int kLanes = Eigen::internal::unpacket_traits<Packet>::size;
  constexpr long kSteps = 2000000;
  double best = 1e30;
  volatile T sink = 0;  // the chains' sums, so that the loop is not removed
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      Packet acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = Eigen::internal::pset1<Packet>(T(1) + T(c) / 64);
      const Packet a = Eigen::internal::pset1<Packet>(T(0.999)), b = Eigen::internal::pset1<Packet>(T(1e-3));
      for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = Eigen::internal::pmadd(acc[c], a, b);
      }
      Packet sum = acc[0];
      for (int c = 1; c < kChains; ++c) sum = Eigen::internal::padd(sum, acc[c]);
      const T total = Eigen::internal::predux(sum);
#pragma omp critical
      sink = sink + total;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * kLanes * kChains * static_cast<double>(kSteps) * threads / best;
}

}  // namespace detail

/// Peak FLOP/s of T = float or double multiply-adds on `threads` threads, measured once per
/// process for each (T, threads).
template <class T> double fma_peak_flops(int threads) {
  static std::mutex mutex;
  static std::map<int, double> measured;
  const std::lock_guard<std::mutex> lock(mutex);
  auto [it, fresh] = measured.try_emplace(threads, 0.0);
  if (fresh) it->second = detail::measure_fma_peak<T>(threads);
  return it->second;
}

}  // namespace gradhpo::bench
