// check_ad: one helper that checks every derivative the engine computes for a function
// f(w, λ) -> scalar, in float64, against central finite differences of f itself (and checks
// that need no finite differences: symmetry, duality, K directions against single ones).
//
// Finite differences come from engine/finite_diff.h (Richardson-extrapolated central
// differences, error O(h⁴)): far below the 1e-6 relative tolerance, so a rule that is off by a
// sign or a factor of 2 cannot pass.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/finite_diff.h>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradhpo::testing {

using Fn = std::function<Var(const Var& w, const Var& lam)>;

inline Tensor random_tensor(const Shape& s, std::uint64_t seed, double lo = -1.0, double hi = 1.0,
                            DType dt = DType::f64) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = u(rng);
  return Tensor::from(v, s, dt);
}

/// Values bounded away from zero (|x| in [0.2, 1]) with random signs: keeps relu and friends
/// off their kinks so that finite differences are meaningful.
inline Tensor away_from_zero(const Shape& s, std::uint64_t seed, DType dt = DType::f64) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.2, 1.0);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = (rng() & 1 ? 1.0 : -1.0) * u(rng);
  return Tensor::from(v, s, dt);
}

using fd::axpy;
using fd::norm;

inline double rel_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-10) {
  REQUIRE(a.size() == b.size());
  return fd::rel_error(a, b, floor);
}

inline std::vector<double> central_diff(const std::function<std::vector<double>(double)>& g) {
  return fd::derivative(g);
}

/// Σ c⊙y + ½ Σ (d⊙y)² with fixed random c, d shaped like y: a scalar wrapper around a
/// primitive's or layer's output y that exercises its second-order rules (the backward rule's own
/// tangent), not only its first derivative.
inline Var wrap(const Var& y, std::uint64_t seed = 11) {
  const Tensor c = random_tensor(y.shape(), seed).to(y.dtype());
  const Tensor d = random_tensor(y.shape(), seed + 1).to(y.dtype());
  const Var dy = y * d;
  return sum(y * c) + 0.5 * sum(dy * dy);
}

/// The message of the gradhpo::Error that f() throws. When f throws nothing, the calling test
/// fails (a check inside a try alone would pass).
template <class F> std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL_CHECK("expected a gradhpo::Error, but nothing was thrown");
  return {};
}

struct AdCheckOptions {
  double tol = 1e-6;         // float64 checks
  double tol_f32 = 1e-4;     // float32 against float64
  bool check_float32 = true;
  bool dense_hessian = true; // only for small w
  std::uint64_t seed = 7;
};

/// Checks, for f at (w, λ) in float64: ∇_w f and ∇_λ f, J v (forward mode), H v and the mixed
/// product ∂_λ(v·∇_w f) against finite differences; uᵀ(Hv) = vᵀ(Hu); K = 3 directions against
/// three single runs; the dense Hessian against H v; and float32 against float64.
inline void check_ad(const std::string& name, const Fn& f, const Tensor& w, const Tensor& lam,
                     const AdCheckOptions& opt = {}) {
  INFO("function: " << name);
  const Shape ws = w.shape(), ls = lam.shape();
  const std::vector<double> w0 = w.to_vector(), l0 = lam.to_vector();
  auto T = [](const std::vector<double>& v, const Shape& s, DType dt = DType::f64) { return Tensor::from(v, s, dt); };

  auto value = [&](const std::vector<double>& wv, const std::vector<double>& lv) {
    Tape t;
    return f(t.variable(T(wv, ws)), t.variable(T(lv, ls))).item();
  };
  auto grads = [&](const std::vector<double>& wv, const std::vector<double>& lv) {
    Tape t;
    Var W = t.variable(T(wv, ws)), L = t.variable(T(lv, ls));
    Var out = f(W, L);
    Request r;
    r.output = out;
    r.gradients = {W, L};
    t.differentiate(r);
    auto vec = [](const Tensor& g, std::int64_t n) { return g.defined() ? g.to_vector() : std::vector<double>(n, 0.0); };
    return std::make_pair(vec(t.adjoint(W).value, ws.numel()), vec(t.adjoint(L).value, ls.numel()));
  };

  const std::vector<double> v = random_tensor(ws, opt.seed + 1).to_vector();
  const std::vector<double> u = random_tensor(ws, opt.seed + 2).to_vector();
  const std::vector<double> lu = random_tensor(ls, opt.seed + 3).to_vector();

  // Gradients against differences of f, one coordinate at a time.
  const auto [gw, gl] = grads(w0, l0);
  std::vector<double> fd_gw(w0.size()), fd_gl(l0.size());
  for (std::size_t i = 0; i < w0.size(); ++i)
    fd_gw[i] = central_diff([&](double s) { auto x = w0; x[i] += s; return std::vector<double>{value(x, l0)}; })[0];
  for (std::size_t i = 0; i < l0.size(); ++i)
    fd_gl[i] = central_diff([&](double s) { auto x = l0; x[i] += s; return std::vector<double>{value(w0, x)}; })[0];
  CHECK_MESSAGE(rel_error(gw, fd_gw) <= opt.tol, "gradient w: rel error " << rel_error(gw, fd_gw));
  CHECK_MESSAGE(rel_error(gl, fd_gl) <= opt.tol, "gradient λ: rel error " << rel_error(gl, fd_gl));

  // Forward mode: J v against the difference of f along v.
  auto fw = [&](const Var& W) { return f(W, W.tape().constant(lam)); };
  const JvpResult jv = jvp(fw, w, T(v, ws));
  const auto fd_jv = central_diff([&](double s) { return std::vector<double>{value(axpy(w0, s, v), l0)}; });
  CHECK_MESSAGE(rel_error(jv.tangent.to_vector(), fd_jv) <= opt.tol, "jvp: rel error " << rel_error(jv.tangent.to_vector(), fd_jv));

  // H v against the difference of the gradient along v; also the gradient the pass returns.
  const HvpResult hv = hvp(fw, w, T(v, ws));
  const auto fd_hv = central_diff([&](double s) { return grads(axpy(w0, s, v), l0).first; });
  CHECK_MESSAGE(rel_error(hv.hvp.to_vector(), fd_hv) <= opt.tol, "hvp: rel error " << rel_error(hv.hvp.to_vector(), fd_hv));
  CHECK_MESSAGE(rel_error(hv.grad.to_vector(), gw) <= 1e-12, "hvp's gradient differs from grad");

  // Mixed product ∂_λ(v·∇_w f) against differences of v·∇_w f, one λ coordinate at a time.
  const MixedResult mx = mixed_vjp(f, w, lam, T(v, ws), /*with_hvp=*/true);
  std::vector<double> fd_mx(l0.size());
  for (std::size_t j = 0; j < l0.size(); ++j)
    fd_mx[j] = central_diff([&](double s) {
      auto x = l0;
      x[j] += s;
      const auto g = grads(w0, x).first;
      double d = 0;
      for (std::size_t i = 0; i < g.size(); ++i) d += v[i] * g[i];
      return std::vector<double>{d};
    })[0];
  CHECK_MESSAGE(rel_error(mx.mixed.to_vector(), fd_mx) <= opt.tol, "mixed: rel error " << rel_error(mx.mixed.to_vector(), fd_mx));
  CHECK_MESSAGE(rel_error(mx.hvp.to_vector(), hv.hvp.to_vector()) <= 1e-12, "mixed_vjp's H v differs from hvp");
  CHECK_MESSAGE(rel_error(mx.grad_lam.to_vector(), gl) <= 1e-12, "mixed_vjp's ∇_λ differs from grad");
  // The pruned pass (mixed alone) must give the same mixed product as the full one.
  const MixedResult mx_alone = mixed_vjp(f, w, lam, T(v, ws));
  CHECK_MESSAGE(rel_error(mx_alone.mixed.to_vector(), mx.mixed.to_vector()) <= 1e-12, "pruned mixed product differs");

  // Symmetry without finite differences: uᵀ(H v) = vᵀ(H u).
  const auto hu = hvp(fw, w, T(u, ws)).hvp.to_vector();
  double uHv = 0, vHu = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    uHv += u[i] * hv.hvp.at(static_cast<std::int64_t>(i));
    vHu += v[i] * hu[i];
  }
  CHECK_MESSAGE(std::abs(uHv - vHu) <= 1e-10 * std::max({1.0, std::abs(uHv), std::abs(vHu)}), "uᵀHv " << uHv << " vs vᵀHu " << vHu);

  // K = 3 directions at once equal three single-direction passes.
  {
    const std::int64_t n = ws.numel();
    std::vector<double> block;
    std::vector<std::vector<double>> dirs = {v, u, random_tensor(ws, opt.seed + 4).to_vector()};
    for (auto& d : dirs) block.insert(block.end(), d.begin(), d.end());
    const Tensor V = Tensor::from(block, Shape{3, n}, DType::f64);
    const MixedResult mk = mixed_vjp(f, w, lam, V, true);
    const JvpResult jk = jvp(fw, w, V);
    for (int k = 0; k < 3; ++k) {
      const MixedResult m1 = mixed_vjp(f, w, lam, T(dirs[static_cast<std::size_t>(k)], ws), true);
      const double jv1 = jvp(fw, w, T(dirs[static_cast<std::size_t>(k)], ws)).tangent.item();
      CHECK_MESSAGE(rel_error(mk.hvp.rows(k, 1).to_vector(), m1.hvp.to_vector()) <= 1e-12, "K-direction H v, k=" << k);
      CHECK_MESSAGE(rel_error(mk.mixed.rows(k, 1).to_vector(), m1.mixed.to_vector()) <= 1e-12, "K-direction mixed, k=" << k);
      CHECK_MESSAGE(std::abs(jk.tangent.at(k) - jv1) <= 1e-12 * std::max(1.0, std::abs(jv1)), "K-direction jvp, k=" << k);
    }
  }

  // Dense Hessian: symmetric, and H v equals the HVP.
  if (opt.dense_hessian && ws.numel() <= 64) {
    const std::int64_t n = ws.numel();
    const Tensor H = hessian(fw, w);
    REQUIRE(H.numel() == n * n);
    std::vector<double> Hv(static_cast<std::size_t>(n), 0.0);
    double asym = 0, scale = 1e-12;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        Hv[static_cast<std::size_t>(i)] += H.at(i * n + j) * v[static_cast<std::size_t>(j)];
        asym = std::max(asym, std::abs(H.at(i * n + j) - H.at(j * n + i)));
        scale = std::max(scale, std::abs(H.at(i * n + j)));
      }
    CHECK_MESSAGE(asym <= 1e-10 * scale, "dense Hessian not symmetric: " << asym);
    CHECK_MESSAGE(rel_error(Hv, hv.hvp.to_vector()) <= 1e-10, "dense Hessian times v differs from hvp");
  }

  // float32 agrees with float64.
  if (opt.check_float32) {
    const Tensor w32 = w.to(DType::f32), l32 = lam.to(DType::f32), v32 = T(v, ws, DType::f32);
    const MixedResult m32 = mixed_vjp(f, w32, l32, v32, true);
    CHECK_MESSAGE(std::abs(m32.value - mx.value) <= opt.tol_f32 * std::max(1.0, std::abs(mx.value)), "float32 value");
    CHECK_MESSAGE(rel_error(m32.grad_w.to_vector(), gw, 1e-6) <= opt.tol_f32, "float32 gradient: " << rel_error(m32.grad_w.to_vector(), gw, 1e-6));
    CHECK_MESSAGE(rel_error(m32.hvp.to_vector(), hv.hvp.to_vector(), 1e-6) <= opt.tol_f32, "float32 hvp: " << rel_error(m32.hvp.to_vector(), hv.hvp.to_vector(), 1e-6));
    CHECK_MESSAGE(rel_error(m32.mixed.to_vector(), mx.mixed.to_vector(), 1e-6) <= opt.tol_f32, "float32 mixed: " << rel_error(m32.mixed.to_vector(), mx.mixed.to_vector(), 1e-6));
  }
}

/// Runs f with OpenMP's thread count set to n, then restores it (serial builds: just runs f).
inline void with_threads(int n, const std::function<void()>& f) {
#ifdef _OPENMP
  const int before = omp_get_max_threads();
  omp_set_num_threads(n);
  f();
  omp_set_num_threads(before);
#else
  (void)n;
  f();
#endif
}

}  // namespace gradhpo::testing
