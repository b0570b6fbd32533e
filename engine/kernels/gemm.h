// Matrix products C = alpha op(A) op(B) + beta C, run by Eigen or OpenBLAS — whichever is faster
// for that product on the machine running it.
//
// Neither library wins everywhere (STYLE.md, performance facts: OpenBLAS leads at some shapes
// on one CPU, Eigen at others on another), so the choice is made at run time, as FFTW's planner
// (and its wisdom file) does: the first time a product of a given shape, transposes, dtype and
// thread count runs on a machine, both libraries run it on scratch buffers and the faster one is
// written to a per-machine plan file, which every later process on that machine reads and obeys.
//
// Why a file and not a per-process cache: a plan is a timing, and two processes timing the same
// product may choose differently and then differ in the last bits. A run killed and resumed in a
// new process (tests/tools) must compute the same bits as one that was not, so the choice must
// be the machine's, not the process's. Once a product is in the file, every process uses it.
//
// The file: $GRADHPO_GEMM_PLAN if set, else $XDG_CACHE_HOME/gradhpo/ (or ~/.cache/gradhpo/)
// gemm-plan-<CPU model>-<hash of the CPU model, Eigen version and OpenBLAS build>.txt; one line
// per product, plain text. Deleting it makes the next process plan again. Where it cannot be
// written, products it does not list run with Eigen (a warning says so once per process).
//
// GRADHPO_GEMM: unset, empty or "auto" plans as above; "eigen" or "openblas" forces that library
// everywhere; anything else, or openblas where it cannot run, is an error at the first product.
// Results are bit-for-bit reproducible for a given machine, thread count and choice.
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

/// The library gemm() runs `problem` with: Eigen or OpenBLAS as GRADHPO_GEMM forces, else the
/// planned one (gemm_plan_choice). Thread-safe.
GemmLibrary gemm_choice(const GemmProblem& problem);
/// The planner's choice for `problem`: the plan file's (gemm_plan_path) if it lists the
/// problem, else measured now and added to the file; Eigen where OpenBLAS cannot run or the
/// file cannot be written, and for products under 16³ multiply-adds (not worth a plan). Cached in the process after the first call. Thread-safe.
GemmLibrary gemm_plan_choice(const GemmProblem& problem);
/// The same with the plan file at `path`, uncached (tests): the file's choice, or measured and
/// added to it.
GemmLibrary gemm_plan_file_choice(const std::string& path, const GemmProblem& problem);
/// The per-machine plan file this process uses ("" where neither GRADHPO_GEMM_PLAN,
/// XDG_CACHE_HOME nor HOME is set).
std::string gemm_plan_path();

/// GRADHPO_GEMM as understood: "eigen", "openblas" or "auto". Throws Error for any other value
/// (or openblas where it cannot run); kernels call it before a parallel region, where an
/// exception could not leave.
const char* gemm_override();

/// Whether OpenBLAS can run products here; if not, `why_not` says why.
bool openblas_usable(std::string* why_not = nullptr);

/// The shared object whose cblas_sgemm the planner's OpenBLAS products call (empty without
/// OpenBLAS): OpenBLAS's own, even where another CBLAS comes first in the program's link order.
std::string openblas_gemm_object();

/// The threads a product started here may use: OpenMP's maximum, or 1 inside a parallel region.
int gemm_threads();

/// Every product in this process's plan (those read from the plan file and those it planned),
/// with its library (for reports).
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

  /// Records `problem` `times` times, run `team` at a time, in the active trace if there is
  /// one (nothing when there is none): for kernels
  /// that compute what a product would (the direct convolutions) without calling gemm, so that
  /// a benchmark's ceiling is the same whichever way a convolution ran.
  static void note(const GemmProblem& problem, int team, std::int64_t times = 1);

 private:
  struct State;
  State* state_;
};

}  // namespace gradhpo::kernels
