#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../error.h"
#include "cpu.h"

#ifdef GRADHPO_HAVE_OPENBLAS
#include <cblas.h>
extern "C" int openblas_get_parallel(void);  // 0 serial, 1 pthreads, 2 OpenMP
#endif

namespace gradhpo::kernels {
namespace {

// C[m, n] = alpha op(A) op(B) + beta C over row-major storage with row strides lda, ldb, ldc.
template <class T> struct GemmArgs {
  std::int64_t m, n, k;
  const T* A;
  std::int64_t lda;
  bool trans_a;
  const T* B;
  std::int64_t ldb;
  bool trans_b;
  T* C;
  std::int64_t ldc;
  T alpha, beta;
};

template <class T> void eigen_gemm(const GemmArgs<T>& g) {
  using Map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
  using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
  const Map a(g.A, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, Eigen::OuterStride<>(g.lda));
  const Map b(g.B, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, Eigen::OuterStride<>(g.ldb));
  OutMap c(g.C, g.m, g.n, Eigen::OuterStride<>(g.ldc));
  const T alpha = g.alpha;
  // Eigen's product kernel accumulates (c += alpha*a*b); with beta = 0 it writes directly.
  if (g.beta == T(0)) {
    if (!g.trans_a && !g.trans_b) c.noalias() = alpha * a * b;
    else if (g.trans_a && !g.trans_b) c.noalias() = alpha * a.transpose() * b;
    else if (!g.trans_a && g.trans_b) c.noalias() = alpha * a * b.transpose();
    else c.noalias() = alpha * a.transpose() * b.transpose();
    return;
  }
  if (g.beta != T(1)) c *= g.beta;
  if (!g.trans_a && !g.trans_b) c.noalias() += alpha * a * b;
  else if (g.trans_a && !g.trans_b) c.noalias() += alpha * a.transpose() * b;
  else if (!g.trans_a && g.trans_b) c.noalias() += alpha * a * b.transpose();
  else c.noalias() += alpha * a.transpose() * b.transpose();
}

#ifdef GRADHPO_HAVE_OPENBLAS
template <class T> void openblas_gemm(const GemmArgs<T>& g) {
  const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans, tb = g.trans_b ? CblasTrans : CblasNoTrans;
  auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, i(g.m), i(g.n), i(g.k), g.alpha, g.A, i(g.lda), g.B, i(g.ldb), g.beta, g.C, i(g.ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, i(g.m), i(g.n), i(g.k), g.alpha, g.A, i(g.lda), g.B, i(g.ldb), g.beta, g.C, i(g.ldc));
}
#endif

template <class T> void run(GemmLibrary library, const GemmArgs<T>& g) {
#ifdef GRADHPO_HAVE_OPENBLAS
  if (library == GemmLibrary::openblas) return openblas_gemm(g);
#else
  GRADHPO_CHECK(library == GemmLibrary::eigen, "gemm: OpenBLAS requested, but gradhpo was built without it");
#endif
  eigen_gemm(g);
}

// The contiguous form: A stored [a_rows, a_cols], B [b_rows, b_cols], C [m, n].
template <class T>
GemmArgs<T> contiguous(const T* A, std::int64_t a_rows, std::int64_t a_cols, bool trans_a, const T* B,
                       std::int64_t b_rows, std::int64_t b_cols, bool trans_b, T* C, T alpha, T beta) {
  return {trans_a ? a_cols : a_rows, trans_b ? b_rows : b_cols, trans_a ? a_rows : a_cols, A, a_cols, trans_a,
          B, b_cols, trans_b, C, trans_b ? b_rows : b_cols, alpha, beta};
}

enum class Forced { none, eigen, openblas };

// GRADHPO_GEMM, read once: "auto" plans; unset, empty or "eigen" is Eigen (see gemm.h for why
// planning is not the default); a library that cannot run is an error.
Forced forced_library() {
  static const Forced forced = [] {
    const char* env = std::getenv("GRADHPO_GEMM");
    const std::string v = env ? env : "";
    if (v == "auto") return Forced::none;
    if (v.empty() || v == "eigen") return Forced::eigen;
    GRADHPO_CHECK(v == "openblas", "GRADHPO_GEMM: expected eigen, openblas or auto, got '" + v + "'");
    std::string why;
    GRADHPO_CHECK(openblas_usable(&why), "GRADHPO_GEMM=openblas, but " + why);
    return Forced::openblas;
  }();
  return forced;
}

// Seconds per call of the product with `library`, on scratch buffers of its shape: the best of
// a few calls after a warm-up, at least 3 and until ~2 ms have been spent.
template <class T> double seconds_per_call(GemmLibrary library, const GemmProblem& p) {
  const std::int64_t a_rows = p.trans_a ? p.k : p.m, a_cols = p.trans_a ? p.m : p.k;
  const std::int64_t b_rows = p.trans_b ? p.n : p.k, b_cols = p.trans_b ? p.k : p.n;
  std::vector<T> A(static_cast<std::size_t>(p.m * p.k), T(0.5)), B(static_cast<std::size_t>(p.k * p.n), T(0.25));
  std::vector<T> C(static_cast<std::size_t>(p.m * p.n));
  auto call = [&] {
    gemm_with<T>(library, A.data(), a_rows, a_cols, p.trans_a, B.data(), b_rows, b_cols, p.trans_b, C.data(), T(1), T(0));
  };
  call();
  double best = 1e30, spent = 0;
  for (int i = 0; i < 3 || (spent < 2e-3 && i < 100); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    spent += s;
  }
  return best;
}

using PlanKey = std::tuple<std::int64_t, std::int64_t, std::int64_t, bool, bool, bool, int>;
PlanKey key_of(const GemmProblem& p) { return {p.m, p.n, p.k, p.trans_a, p.trans_b, p.is_double, p.threads}; }

std::atomic<GemmTrace*> g_trace{nullptr};

struct Plan {
  std::mutex mutex;
  std::map<PlanKey, std::pair<GemmProblem, GemmLibrary>> choices;
};
Plan& plan() {
  static Plan p;
  return p;
}

}  // namespace

const char* gemm_override() {
  switch (forced_library()) {
    case Forced::eigen: return "eigen";
    case Forced::openblas: return "openblas";
    default: return "auto";
  }
}

const char* gemm_library_name(GemmLibrary library) { return library == GemmLibrary::eigen ? "eigen" : "openblas"; }

bool openblas_usable(std::string* why_not) {
#ifdef GRADHPO_HAVE_OPENBLAS
  static const int parallel = openblas_get_parallel();
  if (parallel == 2) return true;
  if (why_not)
    *why_not = std::string("the OpenBLAS loaded is its ") + (parallel == 1 ? "pthreads" : "serial") +
               " build, not the OpenMP one gradhpo was linked with (check the library path)";
  return false;
#else
  if (why_not) *why_not = "gradhpo was built without OpenBLAS (GRADHPO_OPENBLAS=OFF or libopenblas-openmp-dev missing)";
  return false;
#endif
}

int gemm_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

GemmLibrary gemm_choice(const GemmProblem& p) {
  const Forced forced = forced_library();
  if (forced == Forced::eigen) return GemmLibrary::eigen;
  if (forced == Forced::openblas) return GemmLibrary::openblas;
  return gemm_plan_choice(p);
}

GemmLibrary gemm_plan_choice(const GemmProblem& p) {
  if (!openblas_usable()) return GemmLibrary::eigen;
  Plan& pl = plan();
  std::lock_guard<std::mutex> lock(pl.mutex);
  const PlanKey key = key_of(p);
  if (auto it = pl.choices.find(key); it != pl.choices.end()) return it->second.second;
  const double eigen = gemm_seconds(GemmLibrary::eigen, p), openblas = gemm_seconds(GemmLibrary::openblas, p);
  const GemmLibrary choice = openblas < eigen ? GemmLibrary::openblas : GemmLibrary::eigen;
  pl.choices.emplace(key, std::make_pair(p, choice));
  return choice;
}

double gemm_seconds(GemmLibrary library, const GemmProblem& p) {
#ifdef _OPENMP
  // At the problem's thread count (inside a parallel region both libraries run serially).
  const bool set = !omp_in_parallel() && omp_get_max_threads() != p.threads;
  const int omp_before = omp_get_max_threads(), eigen_before = Eigen::nbThreads();
  if (set) {
    omp_set_num_threads(p.threads);
    Eigen::setNbThreads(p.threads);
  }
#endif
  const double s = p.is_double ? seconds_per_call<double>(library, p) : seconds_per_call<float>(library, p);
#ifdef _OPENMP
  if (set) {
    omp_set_num_threads(omp_before);
    Eigen::setNbThreads(eigen_before);
  }
#endif
  return s;
}

struct GemmTrace::State {
  std::mutex mutex;
  std::vector<Entry> entries;
};

GemmTrace::GemmTrace() : state_(new State) {
  GemmTrace* none = nullptr;
  GRADHPO_CHECK(g_trace.compare_exchange_strong(none, this), "GemmTrace: another trace is active");
}

GemmTrace::~GemmTrace() {
  g_trace.store(nullptr);
  delete state_;
}

std::vector<GemmTrace::Entry> GemmTrace::entries() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->entries;
}

void GemmTrace::record(const GemmProblem& problem, int team) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->entries.push_back({problem, team});
}

std::vector<std::pair<GemmProblem, GemmLibrary>> gemm_plan() {
  Plan& pl = plan();
  std::lock_guard<std::mutex> lock(pl.mutex);
  std::vector<std::pair<GemmProblem, GemmLibrary>> out;
  for (const auto& [key, entry] : pl.choices) out.push_back(entry);
  return out;
}

template <class T>
void gemm_with(GemmLibrary library, const T* A, std::int64_t a_rows, std::int64_t a_cols, bool trans_a, const T* B,
               std::int64_t b_rows, std::int64_t b_cols, bool trans_b, T* C, T alpha, T beta) {
  run(library, contiguous(A, a_rows, a_cols, trans_a, B, b_rows, b_cols, trans_b, C, alpha, beta));
}

template <class T>
void gemm_strided(std::int64_t m, std::int64_t n, std::int64_t k, const T* A, std::int64_t lda, bool trans_a,
                  const T* B, std::int64_t ldb, bool trans_b, T* C, std::int64_t ldc, T alpha, T beta) {
  const GemmArgs<T> g{m, n, k, A, lda, trans_a, B, ldb, trans_b, C, ldc, alpha, beta};
  GemmProblem p;
  p.m = m, p.n = n, p.k = k;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.is_double = std::is_same_v<T, double>;
  p.threads = gemm_threads();
  if (GemmTrace* trace = g_trace.load(std::memory_order_relaxed)) {
#ifdef _OPENMP
    trace->record(p, omp_in_parallel() ? omp_get_num_threads() : 1);
#else
    trace->record(p, 1);
#endif
  }
  run(gemm_choice(p), g);
}

template <class T>
void gemm(const T* A, std::int64_t a_rows, std::int64_t a_cols, bool trans_a, const T* B, std::int64_t b_rows,
          std::int64_t b_cols, bool trans_b, T* C, T alpha, T beta) {
  const GemmArgs<T> g = contiguous(A, a_rows, a_cols, trans_a, B, b_rows, b_cols, trans_b, C, alpha, beta);
  gemm_strided(g.m, g.n, g.k, g.A, g.lda, g.trans_a, g.B, g.ldb, g.trans_b, g.C, g.ldc, g.alpha, g.beta);
}

#define GRADHPO_GEMM_INSTANTIATE(T)                                                                              \
  template void gemm<T>(const T*, std::int64_t, std::int64_t, bool, const T*, std::int64_t, std::int64_t, bool,  \
                        T*, T, T);                                                                               \
  template void gemm_with<T>(GemmLibrary, const T*, std::int64_t, std::int64_t, bool, const T*, std::int64_t,    \
                             std::int64_t, bool, T*, T, T);                                                      \
  template void gemm_strided<T>(std::int64_t, std::int64_t, std::int64_t, const T*, std::int64_t, bool, const T*, \
                                std::int64_t, bool, T*, std::int64_t, T, T);
GRADHPO_GEMM_INSTANTIATE(float)
GRADHPO_GEMM_INSTANTIATE(double)
#undef GRADHPO_GEMM_INSTANTIATE

}  // namespace gradhpo::kernels
