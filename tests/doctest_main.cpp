// The one main() of every test_<folder> executable (compiled once, linked into each).
//
// The tests, and the gradhpo programs they start, keep their GEMM and convolution plans in the
// build folder (GRADHPO_GEMM_PLAN, GRADHPO_CONV_PLAN, unless the caller set them): a test run
// neither reads nor writes the plans a user's own runs made in ~/.cache/gradhpo.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  setenv("GRADHPO_GEMM_PLAN", GRADHPO_TEST_GEMM_PLAN, /*overwrite=*/0);
  setenv("GRADHPO_CONV_PLAN", GRADHPO_TEST_CONV_PLAN, /*overwrite=*/0);
  doctest::Context context(argc, argv);
  return context.run();
}
