// The CPU vector kernels that hpo's checks run every step (engine/kernels/vector.h):
// first_non_finite against the plain definition, at every position of blocks and their edges.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <gradhpo/engine/kernels/vector.h>
#include <gradhpo/engine/tensor.h>

using namespace gradhpo;

TEST_CASE("first_non_finite: the first ±inf or NaN, wherever it is, in float32 and float64") {
  // 3000 elements: three blocks of the blocked search, the last one partial.
  const std::int64_t n = 3000;
  for (DType dt : {DType::f32, DType::f64}) {
    std::vector<double> x(static_cast<std::size_t>(n), 1.5);
    CHECK(kernels::first_non_finite(Tensor::from(x, Shape{n}, dt)) == -1);
    const double huge = dt == DType::f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    x[7] = -huge;  // the largest finite values are finite
    x[2999] = huge;
    CHECK(kernels::first_non_finite(Tensor::from(x, Shape{n}, dt)) == -1);
    for (std::int64_t at : {0, 1, 1023, 1024, 1025, 2047, 2048, 2999})
      for (double bad : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()}) {
        std::vector<double> y = x;
        y[static_cast<std::size_t>(at)] = bad;
        if (at + 5 < n) y[static_cast<std::size_t>(at + 5)] = std::numeric_limits<double>::quiet_NaN();  // a later one
        CHECK(kernels::first_non_finite(Tensor::from(y, Shape{n}, dt)) == at);
      }
  }
  CHECK(kernels::first_non_finite(Tensor::zeros(Shape{0}, DType::f32)) == -1);
}
