#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.h"
#include "../work_count.h"
#include "cpu.h"
#include "plan_path.h"

#ifdef GRADHPO_HAVE_OPENBLAS
#include <cblas.h>
#include <dlfcn.h>
extern "C" int openblas_get_parallel(void);  // 0 serial, 1 pthreads, 2 OpenMP
extern "C" char* openblas_get_config(void);
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
// OpenBLAS's own cblas_sgemm and cblas_dgemm, looked up in the shared object that defines
// openblas_get_parallel. Not the plain symbols: every cblas_* call of a process goes to the first
// library that defines it in link order, and a program that also links another CBLAS ahead of
// OpenBLAS (GSL's libgslcblas, which gradhpo::bayesian brings) would send the planner's
// "OpenBLAS" products there — slower, and with other bits.
struct OpenBlasGemm {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  std::string object;  // the shared object they live in
  std::string error;   // why they could not be found
};

const OpenBlasGemm& openblas_entry() {
  static const OpenBlasGemm entry = [] {
    OpenBlasGemm e;
    Dl_info info{};
    if (!dladdr(reinterpret_cast<const void*>(&openblas_get_parallel), &info) || !info.dli_fname) {
      e.error = "dladdr cannot tell which shared object holds OpenBLAS";
      return e;
    }
    e.object = info.dli_fname;
    void* handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  // loaded already: no new reference
    if (!handle) {
      e.error = "dlopen(" + e.object + ") failed";
      return e;
    }
    e.sgemm = reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(handle, "cblas_sgemm"));
    e.dgemm = reinterpret_cast<decltype(&cblas_dgemm)>(dlsym(handle, "cblas_dgemm"));
    dlclose(handle);  // the program's own reference keeps it loaded
    if (!e.sgemm || !e.dgemm) e.error = e.object + " has no cblas_sgemm/cblas_dgemm";
    return e;
  }();
  return entry;
}

template <class T> void openblas_gemm(const GemmArgs<T>& g) {
  const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans, tb = g.trans_b ? CblasTrans : CblasNoTrans;
  auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
  const OpenBlasGemm& blas = openblas_entry();
  if constexpr (std::is_same_v<T, float>)
    blas.sgemm(CblasRowMajor, ta, tb, i(g.m), i(g.n), i(g.k), g.alpha, g.A, i(g.lda), g.B, i(g.ldb), g.beta, g.C, i(g.ldc));
  else
    blas.dgemm(CblasRowMajor, ta, tb, i(g.m), i(g.n), i(g.k), g.alpha, g.A, i(g.lda), g.B, i(g.ldb), g.beta, g.C, i(g.ldc));
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

// GRADHPO_GEMM, read once: unset, empty or "auto" plans (with the per-machine plan file);
// "eigen" or "openblas" forces that library; anything else, or a library that cannot run, is an
// error.
Forced forced_library() {
  static const Forced forced = [] {
    const int choice = env_choice("GRADHPO_GEMM", {"eigen", "openblas"});
    if (choice == 0) return Forced::none;
    if (choice == 1) return Forced::eigen;
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

// ---- the per-machine plan file --------------------------------------------------------------
// One line per planned product, "m n k trans_a trans_b f32|f64 threads eigen|openblas", under a
// '#' header naming the machine. Read without a lock (it is only ever replaced by rename, so a
// reader sees a whole old or a whole new file); on a product it does not list, a process takes
// an exclusive flock on "<file>.lock", reads the file again (another process may have planned
// the product meanwhile: its choice wins), measures only if the product is still missing, and
// writes the file to a temporary name and renames it over the old one. So the first process on
// a machine to run a product decides for every later one, and all of them compute the same bits.

std::string line_of(const GemmProblem& p, GemmLibrary library) {
  std::ostringstream o;
  o << p.m << ' ' << p.n << ' ' << p.k << ' ' << int(p.trans_a) << ' ' << int(p.trans_b) << ' '
    << (p.is_double ? "f64" : "f32") << ' ' << p.threads << ' ' << gemm_library_name(library);
  return o.str();
}

// Parses one line; false for comments, blank or malformed lines (which are ignored).
bool parse_line(const std::string& line, GemmProblem& p, GemmLibrary& library) {
  if (line.empty() || line[0] == '#') return false;
  std::istringstream in(line);
  int ta = 0, tb = 0;
  std::string dtype, lib;
  if (!(in >> p.m >> p.n >> p.k >> ta >> tb >> dtype >> p.threads >> lib)) return false;
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || (dtype != "f32" && dtype != "f64") || p.m <= 0 || p.n <= 0 ||
      p.k <= 0 || p.threads <= 0)
    return false;
  if (lib == "eigen") library = GemmLibrary::eigen;
  else if (lib == "openblas") library = GemmLibrary::openblas;
  else return false;
  p.trans_a = ta == 1;
  p.trans_b = tb == 1;
  p.is_double = dtype == "f64";
  return true;
}

using PlanMap = std::map<PlanKey, std::pair<GemmProblem, GemmLibrary>>;

void read_into(const std::string& path, PlanMap& map) {
  std::ifstream in(path);
  std::string line;
  GemmProblem p;
  GemmLibrary library = GemmLibrary::eigen;
  while (std::getline(in, line))
    if (parse_line(line, p, library)) map.insert_or_assign(key_of(p), std::make_pair(p, library));
}

// What a plan depends on besides the product: the CPU and the two libraries' builds.
std::string machine_identity() {
  std::string id = cpu_model() + " | Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." +
                   std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION);
#ifdef GRADHPO_HAVE_OPENBLAS
  if (const char* config = openblas_get_config()) id += std::string(" | ") + config;
#endif
  return id;
}

std::string default_plan_path() { return machine_plan_path("gemm-plan", machine_identity()); }

// Prints once per process why the plan file cannot be written (products it does not list then
// run with Eigen, the same choice in every process).
void warn_once(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "gradhpo: %s; products it does not list run with Eigen (GRADHPO_GEMM_PLAN sets the file)\n",
                 why.c_str());
  });
}

// The file's choice for p, measured and added to the file if missing. On any failure to lock or
// write the file: Eigen, with a warning. Never throws (it runs inside parallel regions).
GemmLibrary file_choice(const std::string& path, const GemmProblem& p, PlanMap& map) {
  if (path.empty()) {
    warn_once("no GEMM plan file (neither XDG_CACHE_HOME nor HOME is set)");
    return GemmLibrary::eigen;
  }
  if (!make_parent_dirs(path)) {
    warn_once("cannot create the folder of the GEMM plan file " + path + ": " + std::strerror(errno));
    return GemmLibrary::eigen;
  }
  const std::string lock_path = path + ".lock";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) {
    warn_once("cannot open " + lock_path + ": " + std::strerror(errno));
    return GemmLibrary::eigen;
  }
  while (::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  GemmLibrary choice = GemmLibrary::eigen;
  read_into(path, map);  // another process may have planned it since this one read the file
  if (auto it = map.find(key_of(p)); it != map.end()) {
    choice = it->second.second;
  } else {
    // Interleaved, best of three each: a slow moment of the machine (another process, a
    // frequency change) then hits both libraries instead of deciding for the one it missed.
    // A plan written under such a moment once chose OpenBLAS for a [128, 256] × 10 product
    // that Eigen runs in half the time, and the file kept that choice.
    double eigen = 1e30, openblas = 1e30;
    for (int round = 0; round < 3; ++round) {
      eigen = std::min(eigen, gemm_seconds(GemmLibrary::eigen, p));
      openblas = std::min(openblas, gemm_seconds(GemmLibrary::openblas, p));
    }
    choice = openblas < eigen ? GemmLibrary::openblas : GemmLibrary::eigen;
    map.emplace(key_of(p), std::make_pair(p, choice));
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    bool ok = false;
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "# gradhpo GEMM plan: the library each product runs with on this machine (delete the file to plan again)\n"
          << "# " << machine_identity() << "\n"
          << "# m n k trans_a trans_b dtype threads library\n";
      for (const auto& [key, entry] : map) out << line_of(entry.first, entry.second) << '\n';
      out.flush();
      ok = static_cast<bool>(out);
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      warn_once("cannot write the GEMM plan file " + path + ": " + std::strerror(errno));
      std::remove(tmp.c_str());
      map.erase(key_of(p));
      choice = GemmLibrary::eigen;
    }
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return choice;
}

// Products smaller than this (m·n·k) are not planned: both libraries take a few microseconds,
// a timing could not tell them apart, and planning one costs milliseconds. They run with Eigen.
constexpr std::int64_t kPlanMinWork = 16 * 16 * 16;

struct Plan {
  std::mutex mutex;
  bool loaded = false;
  std::string path;
  PlanMap choices;   // the file's, as last read, plus this process's
  PlanMap fallback;  // products the file could not take: Eigen, without asking it again
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

std::string openblas_gemm_object() {
#ifdef GRADHPO_HAVE_OPENBLAS
  const OpenBlasGemm& e = openblas_entry();
  if (!e.error.empty()) return "";
  Dl_info info{};
  return dladdr(reinterpret_cast<const void*>(e.sgemm), &info) && info.dli_fname ? info.dli_fname : "";
#else
  return "";
#endif
}

bool openblas_usable(std::string* why_not) {
#ifdef GRADHPO_HAVE_OPENBLAS
  if (const std::string& error = openblas_entry().error; !error.empty()) {
    if (why_not) *why_not = error;
    return false;
  }
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

std::string gemm_plan_path() {
  static const std::string path = [] {
    const char* env = std::getenv("GRADHPO_GEMM_PLAN");
    return env && *env ? std::string(env) : default_plan_path();
  }();
  return path;
}

GemmLibrary gemm_plan_choice(const GemmProblem& p) {
  if (!openblas_usable() || p.m * p.n * p.k < kPlanMinWork) return GemmLibrary::eigen;
  Plan& pl = plan();
  std::lock_guard<std::mutex> lock(pl.mutex);
  if (!pl.loaded) {
    pl.path = gemm_plan_path();
    if (!pl.path.empty()) read_into(pl.path, pl.choices);
    pl.loaded = true;
  }
  const PlanKey key = key_of(p);
  if (auto it = pl.choices.find(key); it != pl.choices.end()) return it->second.second;
  if (auto it = pl.fallback.find(key); it != pl.fallback.end()) return it->second.second;
  const GemmLibrary choice = file_choice(pl.path, p, pl.choices);
  if (!pl.choices.count(key)) pl.fallback.emplace(key, std::make_pair(p, choice));
  return choice;
}

GemmLibrary gemm_plan_file_choice(const std::string& path, const GemmProblem& p) {
  if (!openblas_usable()) return GemmLibrary::eigen;
  PlanMap map;
  return file_choice(path, p, map);
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

void GemmTrace::note(const GemmProblem& problem, int team, std::int64_t times) {
  count_multiply_adds(times * problem.m * problem.n * problem.k);  // a direct kernel's products
  GemmTrace* trace = g_trace.load(std::memory_order_relaxed);
  if (!trace) return;
  std::lock_guard<std::mutex> lock(trace->state_->mutex);
  trace->state_->entries.insert(trace->state_->entries.end(), static_cast<std::size_t>(times), Entry{problem, team});
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
  count_multiply_adds(m * n * k);
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
