// Matrix products C = alpha op(A) op(B) + beta C, run by Eigen or OpenBLAS — whichever is faster
// for that product on the machine running it.
//
// Neither library wins everywhere (STYLE.md, performance facts: OpenBLAS leads at some shapes
// on one CPU, Eigen at others on another), so the choice is made at run time, as FFTW's planner
// does: the first time a product of a given shape, transposes, dtype and thread count is asked
// for, both libraries run it on scratch buffers and the faster one is remembered for the rest of
// the process. GRADHPO_GEMM=auto plans; GRADHPO_GEMM=openblas forces OpenBLAS; unset (or
// "eigen") is Eigen everywhere; anything else, or openblas where it cannot run, is an error at
// the first product. Results are bit-for-bit reproducible for a given machine, thread count and
// choice — but a plan is a timing, so two processes may plan differently and differ in the last
// bits. Work that must match bit for bit across processes (a run killed and resumed,
// tests/tools) needs the same choice in both, which is why planning is opt-in until the plan is
// kept per machine in a file (not done yet).
//
// OpenBLAS is used only when gradhpo was built with it (GRADHPO_OPENBLAS) and the library
// loaded at run time is its OpenMP build, whose threads are our OpenMP threads (a pthreads
// OpenBLAS keeps its own pool, which fights OpenMP's on the same cores).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradhpo::kernels {

enum class GemmLibrary { eigen, openblas };
const char* gemm_library_name(GemmLibrary library);

/// What the plan is keyed on: C is [m, n], the inner dimension k.
struct GemmProblem {
  std::int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool is_double = false;
  int threads = 1;  ///< the OpenMP threads the product may use (1 inside a parallel region)
};

/// C = alpha * op(A) op(B) + beta * C for 2-D row-major views; A is [m, k] after op, B is
/// [k, n] after op. `a_rows`/`a_cols` give A's stored shape (before the transpose), same for B.
/// Runs with the planned library (gemm_choice).
template <class T>
void gemm(const T* A, std::int64_t a_rows, std::int64_t a_cols, bool trans_a, const T* B, std::int64_t b_rows,
          std::int64_t b_cols, bool trans_b, T* C, T alpha, T beta);

/// C[m, n] = alpha op(A) op(B) + beta C with row strides (leading dimensions): A is stored
/// [m, k] (or [k, m] when transposed) with rows lda apart, B likewise with ldb, C with ldc.
/// Planned like gemm(); the plan is keyed on the shape, not the strides.
template <class T>
void gemm_strided(std::int64_t m, std::int64_t n, std::int64_t k, const T* A, std::int64_t lda, bool trans_a,
                  const T* B, std::int64_t ldb, bool trans_b, T* C, std::int64_t ldc, T alpha, T beta);

/// The same product with a given library (benchmarks time each; openblas must be usable).
template <class T>
void gemm_with(GemmLibrary library, const T* A, std::int64_t a_rows, std::int64_t a_cols, bool trans_a, const T* B,
               std::int64_t b_rows, std::int64_t b_cols, bool trans_b, T* C, T alpha, T beta);

/// The library gemm() runs `problem` with: Eigen or OpenBLAS as GRADHPO_GEMM says, or with
/// GRADHPO_GEMM=auto the planned one (gemm_plan_choice). Thread-safe.
GemmLibrary gemm_choice(const GemmProblem& problem);
/// The planner's choice for `problem`: measured once per process and problem, then cached;
/// Eigen where OpenBLAS cannot run. Thread-safe.
GemmLibrary gemm_plan_choice(const GemmProblem& problem);

/// GRADHPO_GEMM as understood: "eigen", "openblas" or "auto". Throws Error for any other value
/// (or openblas where it cannot run); kernels call it before a parallel region, where an
/// exception could not leave.
const char* gemm_override();

/// Whether OpenBLAS can run products here; if not, `why_not` says why.
bool openblas_usable(std::string* why_not = nullptr);

/// The threads a product started here may use: OpenMP's maximum, or 1 inside a parallel region.
int gemm_threads();

/// Every product planned so far in this process, with its library (for reports).
std::vector<std::pair<GemmProblem, GemmLibrary>> gemm_plan();

/// Seconds one call of `problem` takes with `library`, measured now on scratch buffers (the
/// best of several calls after a warm-up). What the planner compares; benchmarks use it for
/// the GEMM ceiling of a pass.
double gemm_seconds(GemmLibrary library, const GemmProblem& problem);

/// While one exists, every product gemm() runs is recorded with the size of the OpenMP team it
/// ran in (products inside a parallel loop run `team` at a time). For benchmarks: the products
/// a pass performs, to time them bare. One trace at a time; thread-safe.
class GemmTrace {
 public:
  struct Entry {
    GemmProblem problem;
    int team = 1;
  };
  GemmTrace();
  ~GemmTrace();
  GemmTrace(const GemmTrace&) = delete;
  GemmTrace& operator=(const GemmTrace&) = delete;
  std::vector<Entry> entries() const;
  void record(const GemmProblem& problem, int team);

 private:
  struct State;
  State* state_;
};

}  // namespace gradhpo::kernels
