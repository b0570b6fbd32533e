// The whole-vector kernels (engine/kernels/vector.h) on the GPU against the CPU: the reductions
// hpo/ asks for (dot in double, max |x|, the first non-finite entry), clamp, batch norm's running
// statistics (lerp) and the in-place SGD and Adam steps (the formulas of optim_element.h, the
// same text on both devices), float64 ≤ 1e-12 and float32 ≤ 1e-5 relative; the reductions
// repeat their bits from run to run.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <gradhpo/engine/kernels/vector.h>

#include "device_test.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

}  // namespace

TEST_SUITE("device") {

TEST_CASE("dot, max |x| and the first non-finite entry on the GPU match the CPU, and repeat their bits") {
  for (DType dt : {DType::f64, DType::f32}) {
    for (std::int64_t n : {1, 255, 256 * 256 + 7, 1000003}) {
      INFO(dtype_name(dt) << " n = " << n);
      const Tensor x = seeded(Shape{n}, 1, dt), y = seeded(Shape{n}, 2, dt);
      const Tensor xd = x.to(Device::cuda), yd = y.to(Device::cuda);
      const double d = kernels::dot(xd, yd);
      // Products and sums in double for both dtypes (a float32 product is exact in double): only
      // the order of the n additions differs, a rounding error that grows like √n.
      CHECK(rel(d, kernels::dot(x, y)) <= kTolF64 * std::sqrt(static_cast<double>(n)));
      CHECK(kernels::dot(xd, yd) == d);  // deterministic
      CHECK(kernels::max_abs(xd) == kernels::max_abs(x));
      CHECK(kernels::first_non_finite(xd) == -1);
      Tensor bad = x.clone();
      bad.flat_slice(n - 1, 1).fill(std::numeric_limits<double>::infinity());
      if (n > 3) bad.flat_slice(n / 2, 1).fill(std::numeric_limits<double>::quiet_NaN());
      CHECK(kernels::first_non_finite(bad.to(Device::cuda)) == kernels::first_non_finite(bad));
    }
  }
}

TEST_CASE("clamp, lerp and the in-place SGD and Adam steps on the GPU match the CPU") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO(dtype_name(dt));
    const double tol = dt == DType::f64 ? kTolF64 : kTolF32;
    const std::int64_t n = 70001;
    const Tensor w0 = seeded(Shape{n}, 1, dt), g = seeded(Shape{n}, 2, dt), mask = seeded(Shape{n}, 3, dt, 0.0, 1.0);
    Tensor c = w0.clone(), cd = w0.to(Device::cuda);
    kernels::clamp(c, -0.3, 0.5);
    kernels::clamp(cd, -0.3, 0.5);
    CHECK(relative_difference(cd.to_vector(), c.to_vector()) == 0.0);
    Tensor l = w0.clone(), ld = w0.to(Device::cuda);
    kernels::lerp(l, g, 0.1);
    kernels::lerp(ld, g.to(Device::cuda), 0.1);
    CHECK(relative_difference(ld.to_vector(), l.to_vector()) <= tol);

    Tensor w = w0.clone(), v = Tensor::zeros(Shape{n}, dt), wd = w0.to(Device::cuda), vd = v.to(Device::cuda);
    for (int k = 0; k < 3; ++k) {
      kernels::sgd_update(w, v, g, mask, {0.1, 0.9, 0.01});
      kernels::sgd_update(wd, vd, g.to(Device::cuda), mask.to(Device::cuda), {0.1, 0.9, 0.01});
    }
    CHECK(relative_difference(wd.to_vector(), w.to_vector()) <= tol);
    CHECK(relative_difference(vd.to_vector(), v.to_vector()) <= tol);

    for (bool decoupled : {false, true}) {
      Tensor aw = w0.clone(), am = Tensor::zeros(Shape{n}, dt), av = Tensor::zeros(Shape{n}, dt);
      Tensor bw = aw.to(Device::cuda), bm = am.to(Device::cuda), bv = av.to(Device::cuda);
      kernels::AdamUpdate h;
      h.lr = 1e-2;
      h.beta1 = 0.9;
      h.beta2 = 0.999;
      h.eps = 1e-8;
      h.weight_decay = 0.01;
      h.decoupled = decoupled;
      h.eps_inside_sqrt = decoupled;
      h.bc1 = 1 - 0.9;
      h.sqrt_bc2 = std::sqrt(1 - 0.999);
      kernels::adam_update(aw, am, av, g, Tensor(), h);
      kernels::adam_update(bw, bm, bv, g.to(Device::cuda), Tensor(), h);
      CHECK(relative_difference(bw.to_vector(), aw.to_vector()) <= tol);
      CHECK(relative_difference(bv.to_vector(), av.to_vector()) <= tol);
    }
  }
}

}  // TEST_SUITE
