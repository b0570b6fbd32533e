// Functional entry points: gradient, JVP, HVP, mixed product, dense Hessian.
//
// A function is any callable `Var f(const Var& w)` (or `Var f(const Var& w, const Var& lam)`
// for the mixed product) written with the ops of engine/ops.h. Data it needs is captured as
// Tensors and enters the tape as constants. K directions are passed as a [K, n] block; a 1-D
// direction [n] means K = 1 and results come back without the K axis.
//
// hvp and mixed_vjp are exact: one forward pass records values, one tangent sweep pushes the
// directions forward, one backward sweep in dual arithmetic (forward-over-reverse) yields the
// gradient and its directional derivative together — no finite differences, no double backward.
//
// Each entry point has an overload taking a Tape to reuse (the tape is reset first), which is
// what a loop over training steps should use: the arena then allocates nothing in steady state.
#pragma once

#include "ops.h"
#include "tape.h"

namespace gradhpo {

struct ValueAndGrad {
  double value;
  Tensor grad;  // shape of w
};

struct JvpResult {
  Tensor value;    // f(w)
  Tensor tangent;  // [K, numel f] (or f's shape when K = 1 was given as a 1-D direction)
};

struct HvpResult {
  double value;
  Tensor grad;  // ∇_w f
  Tensor hvp;   // H v: [K, n] (or [n])
};

struct MixedResult {
  double value;
  Tensor grad_w;    // ∇_w f
  Tensor grad_lam;  // ∇_λ f
  Tensor mixed;     // ∂_λ (v · ∇_w f) = (∂²f/∂λ∂w) v : [K, m] (or [m])
  Tensor hvp;       // H v, only when asked for (with_hvp), else undefined
};

namespace detail {
/// Shapes a [K, n] result like the direction that was given: 1-D direction → 1-D result.
/// A direction shaped like w means K = 1: the result drops the K axis and takes `single`.
Tensor like_direction(const Tensor& block, const Tensor& direction, const Shape& w_shape, const Shape& single);
void require_scalar(const Var& out, const char* who);
void require_direction(const Tensor& w, const Tensor& v, const char* who);
}  // namespace detail

template <class F> ValueAndGrad value_and_grad(Tape& tape, F&& f, const Tensor& w) {
  tape.reset();
  const Var W = tape.variable(w);
  const Var L = f(W);
  detail::require_scalar(L, "value_and_grad");
  Request r;
  r.output = L;
  r.gradients = {W};
  tape.differentiate(r);
  return {L.item(), tape.adjoint(W).value};
}
template <class F> ValueAndGrad value_and_grad(F&& f, const Tensor& w) {
  Tape tape;
  return value_and_grad(tape, f, w);
}
template <class F> Tensor grad(F&& f, const Tensor& w) { return value_and_grad(f, w).grad; }

/// Forward mode: f(w) and its directional derivatives J v for the K directions.
template <class F> JvpResult jvp(Tape& tape, F&& f, const Tensor& w, const Tensor& v) {
  detail::require_direction(w, v, "jvp");
  tape.reset();
  const Var W = tape.variable(w);
  const Var Y = f(W);
  Request r;
  r.output = Y;
  r.tangents = {{W, v}};
  r.output_tangent = true;
  tape.differentiate(r);
  Tensor t = tape.tangent(Y);
  if (!t.defined()) t = Tensor::zeros(Shape{tape.directions(), Y.numel()}, Y.dtype(), Y.device());  // f ignores w
  return {Y.value(), detail::like_direction(t, v, w.shape(), Y.shape())};
}
template <class F> JvpResult jvp(F&& f, const Tensor& w, const Tensor& v) {
  Tape tape;
  return jvp(tape, f, w, v);
}

/// Reverse mode for a vector-valued f: uᵀ J.
template <class F> Tensor vjp(Tape& tape, F&& f, const Tensor& w, const Tensor& u) {
  tape.reset();
  const Var W = tape.variable(w);
  const Var Y = f(W);
  Request r;
  r.output = Y;
  r.gradients = {W};
  r.output_adjoint = u;
  tape.differentiate(r);
  Tensor g = tape.adjoint(W).value;
  return g.defined() ? g : Tensor::zeros(w.shape(), w.dtype(), w.device());
}
template <class F> Tensor vjp(F&& f, const Tensor& w, const Tensor& u) {
  Tape tape;
  return vjp(tape, f, w, u);
}

/// Hessian-vector products H v (K directions) with the gradient, in one forward-over-reverse pass.
template <class F> HvpResult hvp(Tape& tape, F&& f, const Tensor& w, const Tensor& v) {
  detail::require_direction(w, v, "hvp");
  tape.reset();
  const Var W = tape.variable(w);
  const Var L = f(W);
  detail::require_scalar(L, "hvp");
  Request r;
  r.output = L;
  r.tangents = {{W, v}};
  r.gradients = {W};
  r.adjoint_tangents = {W};
  tape.differentiate(r);
  const Dual g = tape.adjoint(W);
  Tensor hv = g.tangent.defined() ? g.tangent : Tensor::zeros(Shape{tape.directions(), w.numel()}, w.dtype(), w.device());
  Tensor grad = g.value.defined() ? g.value : Tensor::zeros(w.shape(), w.dtype(), w.device());
  return {L.item(), grad, detail::like_direction(hv, v, w.shape(), w.shape())};
}
template <class F> HvpResult hvp(F&& f, const Tensor& w, const Tensor& v) {
  Tape tape;
  return hvp(tape, f, w, v);
}

/// The mixed product ∂_λ(v · ∇_w f(w, λ)) for K directions v, with both gradients. Only the
/// tangents that reach λ are computed (activity pruning), so when λ enters through a
/// regulariser this costs about one gradient. `with_hvp` also returns H v from the same pass.
template <class F>
MixedResult mixed_vjp(Tape& tape, F&& f, const Tensor& w, const Tensor& lam, const Tensor& v, bool with_hvp = false) {
  detail::require_direction(w, v, "mixed_vjp");
  tape.reset();
  const Var W = tape.variable(w);
  const Var Lam = tape.variable(lam);
  const Var L = f(W, Lam);
  detail::require_scalar(L, "mixed_vjp");
  Request r;
  r.output = L;
  r.tangents = {{W, v}};
  r.gradients = {W, Lam};
  r.adjoint_tangents = {Lam};
  if (with_hvp) r.adjoint_tangents.push_back(W);
  tape.differentiate(r);
  const Dual gw = tape.adjoint(W), gl = tape.adjoint(Lam);
  const std::int64_t K = tape.directions();
  MixedResult out;
  out.value = L.item();
  out.grad_w = gw.value.defined() ? gw.value : Tensor::zeros(w.shape(), w.dtype(), w.device());
  out.grad_lam = gl.value.defined() ? gl.value : Tensor::zeros(lam.shape(), lam.dtype(), lam.device());
  out.mixed = detail::like_direction(gl.tangent.defined() ? gl.tangent : Tensor::zeros(Shape{K, lam.numel()}, lam.dtype(), lam.device()),
                                     v, w.shape(), lam.shape());
  if (with_hvp)
    out.hvp = detail::like_direction(gw.tangent.defined() ? gw.tangent : Tensor::zeros(Shape{K, w.numel()}, w.dtype(), w.device()),
                                     v, w.shape(), w.shape());
  return out;
}
template <class F>
MixedResult mixed_vjp(F&& f, const Tensor& w, const Tensor& lam, const Tensor& v, bool with_hvp = false) {
  Tape tape;
  return mixed_vjp(tape, f, w, lam, v, with_hvp);
}

/// Dense Hessian [n, n] of a scalar f, as n HVPs in one pass (K = n). Small problems only.
template <class F> Tensor hessian(F&& f, const Tensor& w) {
  const std::int64_t n = w.numel();
  Tensor eye = Tensor::zeros(Shape{n, n}, w.dtype(), w.device());
  for (std::int64_t i = 0; i < n; ++i) eye.flat_slice(i * n + i, 1).fill(1.0);
  return hvp(f, w, eye).hvp;
}

}  // namespace gradhpo
