// Shared pieces of the benchmark programs.
//
// Ratios are measured in one run, interleaved: every iteration times the operation under test
// and its baseline back to back (e.g. HVP then gradient), so machine noise hits both alike. The
// reported time is the operation's (manual timing, setup and tape reset excluded); the ratio
// goes to a counter such as `hvp_vs_grad`.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/kernels/gemm.h>

#include "fma_peak.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <Eigen/Core>

namespace gradhpo::bench {

/// A float32 tensor of N(0, scale²) entries, seeded.
inline Tensor random_normal(const Shape& s, double scale, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, scale);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = n(rng);
  return Tensor::from(v, s, DType::f32);
}

inline void set_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
}

/// Seconds taken by f().
template <class F> double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// CPU seconds of the whole process (every thread) so far. On a machine shared with other jobs,
/// wall-time ratios take the load of the moment; ratios of the work done (CPU time) do not, as
/// long as waiting threads sleep (OMP_WAIT_POLICY=PASSIVE) instead of spinning.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Wall and CPU seconds taken by f().
struct Timing {
  double wall = 0, cpu = 0;
  /// Keeps the shorter of each time (best-of-n; wall and CPU taken separately).
  void keep_best(const Timing& r) {
    wall = std::min(wall, r.wall);
    cpu = std::min(cpu, r.cpu);
  }
};
constexpr Timing kNoTiming{1e30, 1e30};  // what keep_best starts from
template <class F> Timing timed(F&& f) {
  const double c0 = process_cpu_seconds();
  const double w = seconds(std::forward<F>(f));
  return {w, process_cpu_seconds() - c0};
}

/// The best of three runs of f(), wall and CPU time taken separately (the unit a ratio divides by).
template <class F> Timing best_of_three(F&& f) {
  Timing best = kNoTiming;
  for (int i = 0; i < 3; ++i) best.keep_best(timed(f));
  return best;
}

/// Best of three runs of a() and of b(), interleaved (a, b, a, b, a, b), wall and CPU time taken
/// separately: a slow minute of a shared machine then does not fall on one side of a ratio only.
template <class A, class B> std::pair<Timing, Timing> best_of_three_interleaved(A&& a, B&& b) {
  Timing best_a = kNoTiming, best_b = kNoTiming;
  for (int i = 0; i < 3; ++i) {
    best_a.keep_best(timed(a));
    best_b.keep_best(timed(b));
  }
  return {best_a, best_b};
}

/// Registers "<prefix>/<name>/threads:<threads>" as one manually timed iteration of fn(state),
/// run with `threads` threads (the hypergradient benchmarks: one long run each).
template <class Fn> void register_single_run(const std::string& prefix, const std::string& name, int threads, Fn fn) {
  benchmark::RegisterBenchmark((prefix + "/" + name + "/threads:" + std::to_string(threads)).c_str(),
                               [fn, threads](benchmark::State& s) {
                                 set_threads(threads);
                                 fn(s);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseManualTime()
      ->Iterations(1);
}

/// What one run of `op` could take at best: its GEMM ceiling and its FMA floor, in seconds.
///
/// The ceiling: every product the run performs (kernels::GemmTrace), each timed bare with Eigen
/// and with OpenBLAS at its shape, transposes, dtype and threads, the faster counted; products
/// that ran inside a parallel loop count 1/team of their time (they ran `team` at a time). A
/// convolution that ran on the direct kernels (kernels/conv.h) counts the products its im2col
/// form would have run, so the ceiling is the same whichever algorithm ran, and a fraction above
/// 1 means the pass beat its own GEMMs.
///
/// The floor: the same products' multiply-adds at the machine's measured FMA peak on the run's
/// threads (fma_peak.h): no library, and no other engine doing the same multiply-adds, can take
/// less.
struct PassBounds {
  double gemm_ceiling = 0, fma_floor = 0;
};
template <class Op> PassBounds pass_bounds(Op&& op) {
  std::vector<kernels::GemmTrace::Entry> entries;
  {
    kernels::GemmTrace trace;
    op();
    entries = trace.entries();
  }
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, bool, bool, bool, int>, double> best;
  PassBounds bounds;
  for (const auto& [p, team] : entries) {
    auto [it, fresh] = best.try_emplace({p.m, p.n, p.k, p.trans_a, p.trans_b, p.is_double, p.threads}, 0.0);
    if (fresh) {
      it->second = kernels::gemm_seconds(kernels::GemmLibrary::eigen, p);
      if (kernels::openblas_usable()) it->second = std::min(it->second, kernels::gemm_seconds(kernels::GemmLibrary::openblas, p));
    }
    bounds.gemm_ceiling += it->second / team;
    const double flops = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    bounds.fma_floor += flops / (p.is_double ? fma_peak_flops<double>(threads) : fma_peak_flops<float>(threads));
  }
  return bounds;
}

/// Sets, for `op` whose best time per run is `seconds_per_run`, the counters
///   gemm_ceiling_ms, gemm_fraction = ceiling / time: 1 means the mode runs at the speed of its
///                   bare products; the rest of its time goes outside them;
///   fma_floor_ms, peak_fraction = floor / time: the share of the machine's FMA peak reached.
/// The times are best times, so machine load hits them alike.
template <class Op> void report_pass_bounds(benchmark::State& state, Op&& op, double seconds_per_run) {
  const PassBounds bounds = pass_bounds(op);
  state.counters["gemm_ceiling_ms"] = 1e3 * bounds.gemm_ceiling;
  state.counters["fma_floor_ms"] = 1e3 * bounds.fma_floor;
  if (seconds_per_run > 0) {
    state.counters["gemm_fraction"] = bounds.gemm_ceiling / seconds_per_run;
    state.counters["peak_fraction"] = bounds.fma_floor / seconds_per_run;
  }
}

/// Runs `op` each iteration (its time is the benchmark's) and, when given, `baseline` right
/// after it; sets counter `ratio_name` = total op time / total baseline time, and the same ratio
/// of CPU time (all threads) as `<ratio_name>_cpu`, plus `cpu_ms`, op's mean CPU time per run
/// (on a shared machine the CPU figures move less with load than the wall ones). Returns op's
/// best (shortest) run in seconds.
template <class Op, class Base>
double timed_pair(benchmark::State& state, Op&& op, Base&& baseline, const char* ratio_name) {
  op();  // warm-up: fills the tape arena and the storage pool
  baseline();
  double op_total = 0, base_total = 0, best = 0, op_cpu = 0, base_cpu = 0;
  for (auto _ : state) {
    const Timing t = timed(op);
    state.SetIterationTime(t.wall);
    op_total += t.wall;
    op_cpu += t.cpu;
    best = best == 0 ? t.wall : std::min(best, t.wall);
    const Timing b = timed(baseline);
    base_total += b.wall;
    base_cpu += b.cpu;
  }
  if (state.iterations() > 0) state.counters["cpu_ms"] = 1e3 * op_cpu / static_cast<double>(state.iterations());
  if (ratio_name != nullptr && base_total > 0) {
    state.counters[ratio_name] = op_total / base_total;
    if (base_cpu > 0) state.counters[std::string(ratio_name) + "_cpu"] = op_cpu / base_cpu;
  }
  return best;
}

template <class Op> double timed(benchmark::State& state, Op&& op) {
  return timed_pair(state, op, [] {}, nullptr);
}

/// The timed operations of every benchmark program, for a Problem that provides `loss(w)`,
/// `regularised(w, λ)` and tensors w, lam, v (one direction) and V8 ([8, n] directions). The
/// forward pass runs in plain mode; every differentiated mode reuses one recording tape.
template <class Problem> struct ModeRunner {
  Tape tape;
  Tape plain;
  const Problem& p;
  explicit ModeRunner(const Problem& problem) : p(problem) { plain.set_recording(false); }

  void forward() {
    plain.reset();
    benchmark::DoNotOptimize(p.loss(plain.constant(p.w)).item());
  }
  void gradient() { benchmark::DoNotOptimize(value_and_grad(tape, [&](const Var& w) { return p.loss(w); }, p.w).value); }
  /// The gradient of the regularised loss L(w, λ): the baseline of the mixed product.
  void gradient_regularised() {
    benchmark::DoNotOptimize(
        value_and_grad(tape, [&](const Var& w) { return p.regularised(w, w.tape().constant(p.lam)); }, p.w).value);
  }
  void jvp1() { benchmark::DoNotOptimize(jvp(tape, [&](const Var& w) { return p.loss(w); }, p.w, p.v).tangent); }
  void hvp1() { benchmark::DoNotOptimize(hvp(tape, [&](const Var& w) { return p.loss(w); }, p.w, p.v).hvp); }
  void hvp8() { benchmark::DoNotOptimize(hvp(tape, [&](const Var& w) { return p.loss(w); }, p.w, p.V8).hvp); }
  void mixed() {
    benchmark::DoNotOptimize(
        mixed_vjp(tape, [&](const Var& w, const Var& l) { return p.regularised(w, l); }, p.w, p.lam, p.v).mixed);
  }
};

/// Registers `fn(state)` as "<model>/<mode>/threads:<n>" for each thread count, in ms, manual time.
template <class Fn> void register_modes(const std::string& model, const std::string& mode, Fn fn,
                                        std::initializer_list<int> threads) {
  for (int t : threads) {
    const std::string name = model + "/" + mode + "/threads:" + std::to_string(t);
    benchmark::RegisterBenchmark(name.c_str(), [fn, t](benchmark::State& s) {
      set_threads(t);
      fn(s);
    })->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(0.5);
  }
}

/// Every mode of one problem, with its in-run ratio and gemm_fraction (the bare time of the
/// mode's own products, the faster of Eigen and OpenBLAS for each, over its time):
///
///   forward   plain mode                 gradient   reverse mode (counter GFLOPs if flops > 0)
///   jvp       jvp_vs_forward             hvp        hvp_vs_grad (one forward-over-reverse pass)
///   mixed     mixed_vs_grad: the mixed product alone vs the gradient of the same L(w, λ)
///   hvp_k8    k8_vs_8x_hvp: one pass with K = 8 directions vs eight single-direction HVPs
template <class Problem>
void register_all_modes(const std::string& model, const Problem& (*problem)(), std::initializer_list<int> threads,
                        double gradient_flops = 0) {
  using Runner = ModeRunner<Problem>;
  register_modes(model, "forward", [problem](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.forward(); }, timed(s, [&] { r.forward(); }));
  }, threads);
  register_modes(model, "gradient", [problem, gradient_flops](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.gradient(); }, timed(s, [&] { r.gradient(); }));
    if (gradient_flops > 0)
      s.counters["GFLOPs"] = benchmark::Counter(gradient_flops * static_cast<double>(s.iterations()) / 1e9,
                                                benchmark::Counter::kIsRate);
  }, threads);
  register_modes(model, "jvp", [problem](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.jvp1(); }, timed_pair(s, [&] { r.jvp1(); }, [&] { r.forward(); }, "jvp_vs_forward"));
  }, threads);
  register_modes(model, "hvp", [problem](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.hvp1(); }, timed_pair(s, [&] { r.hvp1(); }, [&] { r.gradient(); }, "hvp_vs_grad"));
  }, threads);
  register_modes(model, "mixed", [problem](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.mixed(); },
                         timed_pair(s, [&] { r.mixed(); }, [&] { r.gradient_regularised(); }, "mixed_vs_grad"));
  }, threads);
  register_modes(model, "hvp_k8", [problem](benchmark::State& s) {
    Runner r(problem());
    report_pass_bounds(s, [&] { r.hvp8(); },
                         timed_pair(s, [&] { r.hvp8(); }, [&] { for (int k = 0; k < 8; ++k) r.hvp1(); }, "k8_vs_8x_hvp"));
  }, threads);
}

}  // namespace gradhpo::bench
