// The GEMM planner (engine/kernels/gemm.h): both libraries compute every transpose case and
// beta form correctly, the planned gemm() agrees with them, the plan is cached and repeatable.
#include "check_ad.h"

#include <gradhpo/engine/kernels/cpu.h>
#include <gradhpo/engine/kernels/gemm.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

using namespace gradhpo;
using namespace gradhpo::kernels;
using namespace gradhpo::testing;

namespace {

// C = alpha op(A) op(B) + beta C, one dot product at a time, in double.
std::vector<double> naive(const std::vector<double>& A, const std::vector<double>& B, std::vector<double> C,
                          std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, double alpha, double beta) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t l = 0; l < k; ++l)
        s += A[static_cast<std::size_t>(ta ? l * m + i : i * k + l)] * B[static_cast<std::size_t>(tb ? j * k + l : l * n + j)];
      double& c = C[static_cast<std::size_t>(i * n + j)];
      c = alpha * s + beta * c;
    }
  return C;
}

template <class T> std::vector<T> as(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }

std::vector<GemmLibrary> libraries() {
  std::vector<GemmLibrary> l = {GemmLibrary::eigen};
  if (openblas_usable()) l.push_back(GemmLibrary::openblas);
  return l;
}

template <class T> void check_all_forms(double tol) {
  const std::int64_t m = 37, n = 19, k = 53;
  const std::vector<double> A = random_tensor(Shape{m * k}, 1).to_vector(), B = random_tensor(Shape{k * n}, 2).to_vector();
  const std::vector<double> C0 = random_tensor(Shape{m * n}, 3).to_vector();
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const auto& [alpha, beta] : {std::pair{1.0, 0.0}, {1.0, 1.0}, {-0.5, 2.0}}) {
        const std::vector<double> want = naive(A, B, C0, m, n, k, ta, tb, alpha, beta);
        auto run = [&](auto&& product) {
          std::vector<T> a = as<T>(A), b = as<T>(B), c = as<T>(C0);
          product(a.data(), ta ? k : m, ta ? m : k, b.data(), tb ? n : k, tb ? k : n, c.data());
          return std::vector<double>(c.begin(), c.end());
        };
        for (GemmLibrary lib : libraries()) {
          INFO(gemm_library_name(lib) << " ta=" << ta << " tb=" << tb << " alpha=" << alpha << " beta=" << beta);
          const auto got = run([&](const T* a, std::int64_t ar, std::int64_t ac, const T* b, std::int64_t br,
                                   std::int64_t bc, T* c) { gemm_with<T>(lib, a, ar, ac, ta, b, br, bc, tb, c, T(alpha), T(beta)); });
          CHECK(rel_error(got, want) <= tol);
        }
        const auto planned = run([&](const T* a, std::int64_t ar, std::int64_t ac, const T* b, std::int64_t br,
                                     std::int64_t bc, T* c) { gemm<T>(a, ar, ac, ta, b, br, bc, tb, c, T(alpha), T(beta)); });
        CHECK(rel_error(planned, want) <= tol);
        // The same product again: the cached choice, bit for bit the same result.
        const auto again = run([&](const T* a, std::int64_t ar, std::int64_t ac, const T* b, std::int64_t br,
                                   std::int64_t bc, T* c) { gemm<T>(a, ar, ac, ta, b, br, bc, tb, c, T(alpha), T(beta)); });
        CHECK(again == planned);
      }
}

}  // namespace

TEST_CASE("gemm: every library, transpose case and beta form against a naive product") {
  check_all_forms<double>(1e-13);
  check_all_forms<float>(1e-5);
}

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("gemm: the plan remembers one library per problem") {
  GemmProblem p;
  p.m = 64, p.n = 48, p.k = 80, p.threads = gemm_threads();
  const GemmLibrary first = gemm_plan_choice(p);
  CHECK(gemm_plan_choice(p) == first);
  bool listed = false;
  for (const auto& [q, lib] : gemm_plan())
    listed |= q.m == p.m && q.n == p.n && q.k == p.k && !q.trans_a && !q.trans_b && !q.is_double && lib == first;
  CHECK(listed == openblas_usable());  // without OpenBLAS there is nothing to plan
  CHECK(gemm_seconds(GemmLibrary::eigen, p) > 0);
  // Unset, GRADHPO_GEMM means the plan: the machine's choice, the same in every process.
  const char* env = std::getenv("GRADHPO_GEMM");
  if (!env || std::string(env).empty()) CHECK(gemm_choice(p) == first);
  // ...because it is written down: the plan file (the tests' own, tests/doctest_main.cpp) lists it.
  if (openblas_usable()) {
    CHECK(gemm_plan_path().find("gemm-plan-tests.txt") != std::string::npos);
    const std::string line = "64 48 80 0 0 f32 " + std::to_string(p.threads) + " " + gemm_library_name(first);
    CHECK(slurp(gemm_plan_path()).find(line) != std::string::npos);
  }
}

TEST_CASE("gemm: the plan file decides for every process, and a missing product is measured and added") {
  if (!openblas_usable()) return;  // nothing to choose between
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gradhpo-plan-test-" + std::to_string(::getpid()) + "/plan.txt")).string();
  GemmProblem p;
  p.m = 40, p.n = 24, p.k = 56, p.trans_b = true, p.threads = 1;
  // Written by hand (as another process would have): the file's choice wins over any timing.
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  for (const char* library : {"openblas", "eigen", "openblas"}) {
    std::ofstream(path) << "# a comment, a malformed line, then the product\nnot a product\n40 24 56 0 1 f32 1 " << library << "\n";
    CHECK(std::string(gemm_library_name(gemm_plan_file_choice(path, p))) == library);
  }
  // The same shape with other transposes, dtype or threads is another product: measured, added.
  GemmProblem q = p;
  q.is_double = true;
  const GemmLibrary measured = gemm_plan_file_choice(path, q);
  const std::string text = slurp(path);
  CHECK(text.find("40 24 56 0 1 f64 1 " + std::string(gemm_library_name(measured))) != std::string::npos);
  CHECK(text.find("40 24 56 0 1 f32 1 openblas") != std::string::npos);  // kept
  CHECK(text.find("not a product") == std::string::npos);                  // rewritten clean
  CHECK(gemm_plan_file_choice(path, q) == measured);
  // Deleted, it is planned again from nothing.
  std::filesystem::remove(path);
  gemm_plan_file_choice(path, p);
  CHECK(slurp(path).find("40 24 56 0 1 f32 1 ") != std::string::npos);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST_CASE("gemm: an unwritable plan file means Eigen for what it does not list") {
  if (!openblas_usable()) return;
  GemmProblem p;
  p.m = 32, p.n = 32, p.k = 32, p.threads = 1;
  CHECK(gemm_plan_file_choice("/proc/gradhpo-no-such-dir/plan.txt", p) == GemmLibrary::eigen);
}

TEST_CASE("gemm: OpenBLAS, when not usable, says why — never the wrong build silently") {
  std::string why;
  if (!openblas_usable(&why)) {
    MESSAGE("OpenBLAS not used: " << why);
    CHECK(why.find("built without OpenBLAS") != std::string::npos);  // a pthreads build loaded would fail here
  }
}

TEST_CASE("gemm_strided: blocks of larger matrices (row strides past the block) by both libraries") {
  // C[1:5, 2:7] of a [6, 9] matrix += A[0:4, 1:6] (inside a [5, 8]) · B[2:7, 0:5] (inside a [9, 7]).
  const std::int64_t m = 4, n = 5, k = 5, lda = 8, ldb = 7, ldc = 9;
  const std::vector<double> A = random_tensor(Shape{5 * lda}, 4).to_vector(), B = random_tensor(Shape{9 * ldb}, 5).to_vector();
  std::vector<double> C = random_tensor(Shape{6 * ldc}, 6).to_vector();
  std::vector<double> want = C;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t l = 0; l < k; ++l) s += A[static_cast<std::size_t>(i * lda + 1 + l)] * B[static_cast<std::size_t>((2 + l) * ldb + j)];
      double& c = want[static_cast<std::size_t>((1 + i) * ldc + 2 + j)];
      c = s + 0.5 * c;
    }
  gemm_strided<double>(m, n, k, A.data() + 1, lda, false, B.data() + 2 * ldb, ldb, false, C.data() + ldc + 2, ldc, 1.0, 0.5);
  CHECK(rel_error(C, want) <= 1e-14);  // and every element outside the block untouched
}

TEST_CASE("env_choice: unset, empty or auto is 0, a choice its place from 1, anything else an error naming them") {
  using gradhpo::kernels::env_choice;
  const char* name = "GRADHPO_TEST_ENV_CHOICE";
  unsetenv(name);
  CHECK(env_choice(name, {"eigen", "openblas"}) == 0);
  for (const auto& [value, want] : {std::pair{"", 0}, {"auto", 0}, {"eigen", 1}, {"openblas", 2}}) {
    setenv(name, value, 1);
    CHECK(env_choice(name, {"eigen", "openblas"}) == want);
  }
  setenv(name, "mkl", 1);
  CHECK_THROWS_WITH_AS(env_choice(name, {"eigen", "openblas"}),
                       "GRADHPO_TEST_ENV_CHOICE: expected eigen, openblas or auto, got 'mkl'", gradhpo::Error);
  setenv(name, "Direct", 1);  // case matters
  CHECK_THROWS_WITH_AS(env_choice(name, {"direct", "im2col"}),
                       "GRADHPO_TEST_ENV_CHOICE: expected direct, im2col or auto, got 'Direct'", gradhpo::Error);
  unsetenv(name);
}
