// The README's engine example compiles and gives the closed-form answers.
#include <doctest/doctest.h>

#include <cmath>

#include <gradhpo/engine/autodiff.h>

using namespace gradhpo;

TEST_CASE("README example: mixed product and H v of Σ tanh(w)² + ½ Σ λ w²") {
  auto L = [](const Var& w, const Var& lam) { return sum(square(tanh(w))) + 0.5 * sum(lam * square(w)); };
  Tensor w = Tensor::from({0.1, -0.5, 2.0}, {3}, DType::f64), lam = Tensor::full({3}, 0.1, DType::f64);
  Tensor v = Tensor::from({1.0, 0.0, 0.0}, {3}, DType::f64);
  MixedResult r = mixed_vjp(L, w, lam, v, /*with_hvp=*/true);
  // ∂_λ_i (v·∇_w L) = v_i w_i;  H is diagonal with d²/dw² tanh(w)² + λ = 2 sech²(w) (sech²(w) − 2 tanh²(w)) + λ.
  CHECK(r.mixed.at(0) == doctest::Approx(0.1).epsilon(1e-14));
  CHECK(r.mixed.at(1) == 0.0);
  const double t = std::tanh(0.1), s2 = 1 - t * t;
  CHECK(r.hvp.at(0) == doctest::Approx(2 * s2 * (s2 - 2 * t * t) + 0.1).epsilon(1e-14));
  CHECK(r.hvp.at(2) == 0.0);
  CHECK(r.grad_w.at(1) == doctest::Approx(2 * std::tanh(-0.5) * (1 - std::tanh(-0.5) * std::tanh(-0.5)) - 0.05).epsilon(1e-14));
}
