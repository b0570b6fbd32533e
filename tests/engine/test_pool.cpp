// max_pool2d, avg_pool2d and global_avg_pool: every derivative through check_ad, values against
// naive loops, and ties in max pooling going to the first maximum.
#include "check_ad.h"

#include <algorithm>
#include <numeric>

#include <gradhpo/engine/ops.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// Distinct values 0.1 apart in random order: a perturbation below 0.05 never changes an argmax,
/// so max pooling is smooth around the test point (no near-ties for finite differences).
Tensor separated(const Shape& s, std::uint64_t seed) {
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  std::iota(v.begin(), v.end(), 0.0);
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  for (double& x : v) x *= 0.1;
  return Tensor::from(v, s, DType::f64);
}

// x = separated data + 0.01 · (a w-dependent image scaled by λ) — |perturbation| ≤ 0.015.
Var pool_input(const Var& w, const Var& lam, const Shape& s) {
  const Var img = slice(w, 0, Shape{s[1], s[2], s[3]}) * lam * 0.01;
  return separated(s, 5).to(w.dtype()) + img;
}

std::vector<double> naive_pool(const std::vector<double>& x, std::int64_t planes, std::int64_t H, std::int64_t W,
                               std::int64_t k, std::int64_t s, bool max) {
  const std::int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
  std::vector<double> y;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < Ho; ++i)
      for (std::int64_t j = 0; j < Wo; ++j) {
        double acc = max ? -1e300 : 0.0;
        for (std::int64_t a = 0; a < k; ++a)
          for (std::int64_t b = 0; b < k; ++b) {
            const double v = x[static_cast<std::size_t>((p * H + i * s + a) * W + j * s + b)];
            acc = max ? std::max(acc, v) : acc + v / static_cast<double>(k * k);
          }
        y.push_back(acc);
      }
  return y;
}

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d: derivatives of every order") {
  struct P { int k, s; };
  for (const P p : {P{2, 2}, P{3, 2}, P{3, 1}, P{2, 3}}) {
    const Shape xs{2, 2, 5, 6};
    const std::string tag = " k" + std::to_string(p.k) + " s" + std::to_string(p.s);
    const Tensor w = random_tensor(Shape{2 * 5 * 6}, 3);
    const Tensor lam = random_tensor(Shape{6}, 4, 0.5, 1.5);
    check_ad("max_pool2d" + tag, [xs, p](const Var& ww, const Var& ll) {
      return wrap(max_pool2d(pool_input(ww, ll, xs), p.k, p.s));
    }, w, lam);
    check_ad("avg_pool2d" + tag, [xs, p](const Var& ww, const Var& ll) {
      return wrap(avg_pool2d(pool_input(ww, ll, xs), p.k, p.s));
    }, w, lam);
  }
}

TEST_CASE("global_avg_pool: derivatives of every order") {
  check_ad("global_avg_pool", [](const Var& w, const Var& lam) {
    return wrap(global_avg_pool(pool_input(w, lam, Shape{3, 2, 3, 4}) * 10.0));
  }, random_tensor(Shape{24}, 3), random_tensor(Shape{4}, 4, 0.5, 1.5));
}

TEST_CASE("pooling composed with conv2d and relu (a LeNet block)") {
  check_ad("relu(conv) -> max_pool -> avg_pool", [](const Var& w, const Var& lam) {
    const Var x = pool_input(w, lam, Shape{2, 1, 6, 6});
    const Var filt = slice(w, 36, Shape{2, 1, 3, 3}) * slice(lam, 0, Shape{3});
    const Var h = relu(conv2d(x, filt, 1, 1));  // [2, 2, 6, 6]
    return wrap(avg_pool2d(max_pool2d(h, 2, 2), 2, 1));
  }, random_tensor(Shape{36 + 18}, 8), random_tensor(Shape{6}, 9, 0.5, 1.5), AdCheckOptions{.check_float32 = false});
}

TEST_CASE("pooling values equal naive loops (float64 and float32, threaded sizes too)") {
  struct V { std::int64_t N, C, H, W, k, s; };
  for (const V v : {V{2, 3, 7, 6, 2, 2}, V{1, 2, 9, 9, 3, 2}, V{2, 2, 5, 5, 3, 1}, V{64, 6, 28, 28, 2, 2}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor x = random_tensor(Shape{v.N, v.C, v.H, v.W}, 41, -1, 1, dt);
      Tape t;
      const Var mx = max_pool2d(t.constant(x), static_cast<int>(v.k), static_cast<int>(v.s));
      const Var av = avg_pool2d(t.constant(x), static_cast<int>(v.k), static_cast<int>(v.s));
      const auto xv = x.to_vector();
      const double tol = dt == DType::f64 ? 1e-15 : 1e-6;
      CHECK(rel_error(mx.value().to_vector(), naive_pool(xv, v.N * v.C, v.H, v.W, v.k, v.s, true)) <= tol);
      CHECK(rel_error(av.value().to_vector(), naive_pool(xv, v.N * v.C, v.H, v.W, v.k, v.s, false)) <= tol);
      CHECK(mx.shape() == Shape{v.N, v.C, (v.H - v.k) / v.s + 1, (v.W - v.k) / v.s + 1});
    }
  }
  const Tensor x = random_tensor(Shape{2, 3, 4, 5}, 42);
  Tape t;
  const Var g = global_avg_pool(t.constant(x));
  REQUIRE(g.shape() == Shape{2, 3});
  const auto xv = x.to_vector();
  for (std::int64_t p = 0; p < 6; ++p) {
    double s = 0;
    for (std::int64_t i = 0; i < 20; ++i) s += xv[static_cast<std::size_t>(p * 20 + i)];
    CHECK(std::abs(g.value().at(p) - s / 20) <= 1e-15);
  }
}

TEST_CASE("max_pool2d: ties go to the first maximum in the window (gradient, tangent, adjoint tangent)") {
  // One plane 4×4 with k = 2, s = 2: every window holds ties.
  const std::vector<double> plane = {1, 1, 2, 0,   //
                                     1, 1, 2, 2,   //
                                     0, 3, 5, 5,   //
                                     3, 3, 5, 5};
  const Tensor x = Tensor::from(plane, Shape{1, 1, 4, 4}, DType::f64);
  // Positions of the first maximum of each window, row-major within the window.
  const std::vector<double> expect = {1, 0, 1, 0,  //
                                      0, 0, 0, 0,  //
                                      0, 1, 1, 0,  //
                                      0, 0, 0, 0};
  auto f = [](const Var& w) { return sum(max_pool2d(w, 2, 2)); };
  CHECK(grad(f, x).to_vector() == expect);
  // Tangent: ẏ gathers ẋ at the same positions; H v of 0.5 Σ y² gathers and scatters there.
  const Tensor v = random_tensor(Shape{1, 1, 4, 4}, 5);
  const JvpResult jv = jvp([](const Var& w) { return max_pool2d(w, 2, 2); }, x, v);
  const auto vv = v.to_vector();
  CHECK(jv.tangent.to_vector() == std::vector<double>{vv[1 * 0 + 0], vv[2], vv[9], vv[10]});
  const HvpResult hv = hvp([](const Var& w) { const Var y = max_pool2d(w, 2, 2); return 0.5 * sum(y * y); }, x, v);
  std::vector<double> hv_expect(16, 0.0);
  for (int i : {0, 2, 9, 10}) hv_expect[static_cast<std::size_t>(i)] = vv[static_cast<std::size_t>(i)];
  CHECK(hv.hvp.to_vector() == hv_expect);
}

TEST_CASE("pooling: errors name the op and the shapes") {
  Tape t;
  const Var x = t.variable(Tensor::zeros(Shape{2, 3, 4, 4}, DType::f64));
  for (auto* pool : {&max_pool2d, &avg_pool2d}) {
    CHECK_THROWS_AS(pool(t.variable(Tensor::zeros(Shape{3, 4, 4}, DType::f64)), 2, 2), Error);
    CHECK_THROWS_AS(pool(x, 5, 1), Error);
    CHECK_THROWS_AS(pool(x, 2, 0), Error);
  }
  const std::string what = error_message([&] { max_pool2d(x, 5, 1); });
  CHECK(what.find("max_pool2d") != std::string::npos);
  CHECK(what.find("[2, 3, 4, 4]") != std::string::npos);
  CHECK_THROWS_AS(global_avg_pool(t.variable(Tensor::zeros(Shape{2, 3}, DType::f64))), Error);
}
