// The one main() of every test_<folder> executable (compiled once, linked into each).
//
// The tests, and the gradhpo programs they start, keep their GEMM plan in the build folder
// (GRADHPO_GEMM_PLAN, unless the caller set it): a test run neither reads nor writes the plan a
// user's own runs made in ~/.cache/gradhpo.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  setenv("GRADHPO_GEMM_PLAN", GRADHPO_TEST_GEMM_PLAN, /*overwrite=*/0);
  doctest::Context context(argc, argv);
  return context.run();
}
