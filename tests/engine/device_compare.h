// Every mode of one function on two devices (STYLE.md 7: every backend against the reference
// backend). A function y = f(w, λ) — an op, a layer or a whole model — runs on a device with w,
// λ and its data moved there, and gives: its value y, the JVP J v for K directions at once, the
// VJP uᵀJ, and for the scalar s = wrap(y) (which exercises the second-order rules) the gradient
// in w and λ, H v and the mixed product ∂_λ(v·∇_w s). check_same compares two such runs.
//
// Used by tests/engine/test_device_seam.cpp (CPU against a host-emulated device, exact) and by
// tests/cuda (CPU against the GPU, float64 ≤ 1e-12, float32 ≤ 1e-5 relative).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gradhpo/engine/autodiff.h>
#include <gradhpo/engine/ops.h>

namespace gradhpo::testing {

/// f(w, λ) with its data on device d (a test moves captured tensors with .to(d)).
using DeviceFn = std::function<Var(const Var& w, const Var& lam, Device d)>;

struct ModeResults {
  std::vector<double> value, jvp, vjp;                  // y, J V ([K, numel y]), uᵀJ
  double scalar = 0;                                    // s = wrap(y)
  std::vector<double> grad_w, grad_lam, hvp, mixed;     // of s; hvp and mixed [K, ...]
};

inline Tensor seeded(const Shape& s, std::uint64_t seed, DType dt, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(s.numel()));
  for (double& x : v) x = u(rng);
  return Tensor::from(v, s, dt);
}

// A small convolutional net, run on both sides of a device comparison: conv (strided, padded,
// then 1×1) with a channel bias and a channel scale, on data x [2, 3, image, image]; w holds the
// filters [4, 3, 3, 3], the 1×1 filters [2, 4, 1, 1] and the bias [4] (kConvParams); λ [4] scales.
constexpr std::int64_t kConvParams = 4 * 3 * 3 * 3 + 2 * 4 + 4;  // 120
inline Var convnet(const Var& w, const Var& lam, Device d, std::int64_t image) {
  Tape& t = w.tape();
  const Var x = t.constant(seeded(Shape{2, 3, image, image}, 8, w.dtype()).to(d));
  const Var f1 = slice(w, 0, Shape{4, 3, 3, 3}), f2 = slice(w, 108, Shape{2, 4, 1, 1});
  const Var bias = slice(w, 116, Shape{4});
  const Var h = tanh(channel_scale(conv2d(x, f1, bias, 2, 1), lam));
  const Var y = conv2d(h, f2);
  return concat({y, channel_sum(y)});
}

/// Σ c⊙y + ½ Σ (e⊙y)², c and e fixed and made on y's device: a scalar whose Hessian involves
/// the second-order rules of y's ops, not only their first derivatives.
inline Var wrap_on(const Var& y, Device d) {
  const Tensor c = seeded(y.shape(), 101, y.dtype()).to(d);
  const Tensor e = seeded(y.shape(), 102, y.dtype()).to(d);
  const Var ey = y * e;
  return sum(y * c) + 0.5 * sum(ey * ey);
}

/// Runs every mode of f at (w, λ) with K = V.dim(0) directions V [K, numel w] on device d.
inline ModeResults run_modes(const DeviceFn& f, const Tensor& w, const Tensor& lam, const Tensor& V, Device d) {
  const Tensor wd = w.to(d), ld = lam.to(d), Vd = V.to(d);
  ModeResults r;
  Tape tape;
  auto y_of_w = [&](const Var& W) { return f(W, W.tape().constant(ld), d); };
  const JvpResult j = jvp(tape, y_of_w, wd, Vd);
  r.value = j.value.to_vector();
  r.jvp = j.tangent.to_vector();
  const Tensor u = seeded(j.value.shape(), 103, w.dtype()).to(d);
  r.vjp = vjp(tape, y_of_w, wd, u).to_vector();
  const MixedResult m = mixed_vjp(tape, [&](const Var& W, const Var& L) { return wrap_on(f(W, L, d), d); }, wd, ld, Vd,
                                  /*with_hvp=*/true);
  r.scalar = m.value;
  r.grad_w = m.grad_w.to_vector();
  r.grad_lam = m.grad_lam.to_vector();
  r.hvp = m.hvp.to_vector();
  r.mixed = m.mixed.to_vector();
  return r;
}

/// ‖a − b‖ / ‖b‖ (absolute when b is zero).
inline double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// Checks that `got` matches the reference run `ref` in every mode within `tol`.
inline void check_same(const std::string& what, const ModeResults& ref, const ModeResults& got, double tol) {
  INFO(what);
  CHECK(relative_difference(got.value, ref.value) <= tol);
  CHECK(relative_difference(got.jvp, ref.jvp) <= tol);
  CHECK(relative_difference(got.vjp, ref.vjp) <= tol);
  CHECK(relative_difference({got.scalar}, {ref.scalar}) <= tol);
  CHECK(relative_difference(got.grad_w, ref.grad_w) <= tol);
  CHECK(relative_difference(got.grad_lam, ref.grad_lam) <= tol);
  CHECK(relative_difference(got.hvp, ref.hvp) <= tol);
  CHECK(relative_difference(got.mixed, ref.mixed) <= tol);
}

/// f on the CPU and on `device`, in dtype dt, with K = 2 directions: every mode within tol.
inline void compare_devices(const std::string& what, const DeviceFn& f, const Shape& w_shape, const Shape& lam_shape,
                            DType dt, Device device, double tol, double lo = -1.0, double hi = 1.0) {
  const Tensor w = seeded(w_shape, 1, dt, lo, hi);
  const Tensor lam = seeded(lam_shape, 2, dt, 0.1, 0.5);
  const Tensor V = seeded(Shape{2, w_shape.numel()}, 3, dt);
  const ModeResults ref = run_modes(f, w, lam, V, Device::cpu);
  const ModeResults got = run_modes(f, w, lam, V, device);
  check_same(what + " (" + dtype_name(dt) + ")", ref, got, tol);
}

}  // namespace gradhpo::testing
