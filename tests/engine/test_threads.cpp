// The library's thread-count call (engine/threads.h): set, read back, 0 restores the default.
#include <doctest/doctest.h>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <gradhpo/engine/error.h>
#include <gradhpo/engine/threads.h>

using namespace gradhpo;

TEST_CASE("set_num_threads: set, read back, 0 is the default, negative is refused") {
  const int start = num_threads();
  REQUIRE(start >= 1);
#ifdef _OPENMP
  set_num_threads(2);
  CHECK(num_threads() == 2);
  CHECK(omp_get_max_threads() == 2);  // what the kernels' OpenMP loops use
  CHECK(Eigen::nbThreads() == 2);
  set_num_threads(1);
  CHECK(num_threads() == 1);
  CHECK(Eigen::nbThreads() == 1);
  set_num_threads(3);
  CHECK(num_threads() == 3);
#endif
  set_num_threads(0);
  CHECK(num_threads() == start);  // the default: OpenMP's count at start-up
  CHECK_THROWS_WITH_AS(set_num_threads(-1), doctest::Contains("-1 threads"), Error);
  CHECK(num_threads() == start);  // a refused call changes nothing
}
