#include "weighted_l2.h"

#include <algorithm>

#include "../backend.h"
#include "../kernels/cpu.h"
#include "elementwise.h"
#include "reduce.h"

namespace gradhpo {
namespace {

using kernels::ConstArrayMap;

// Row k of a [K, n] tangent block, or null when the tangent is zero (undefined).
template <class T> const T* tangent_row(const Tensor& tangent, std::int64_t k, std::int64_t n) {
  return tangent.defined() ? tangent.data<T>() + k * n : nullptr;
}

// ---- the value and its tangent: serial reductions (fixed order: the same bits on any number
// of threads) -------------------------------------------------------------------------------

/// ẏ_k = Σ w (λ ẇ_k + ½ λ̇_k w) for each direction k, the terms of a zero tangent left out;
/// undefined when neither input has a tangent.
template <class T> Tensor tangent_of(const Dual& w, const Dual& lam) {
  const std::int64_t n = w.value.numel();
  const std::int64_t K = w.has_tangent() ? w.K() : lam.K();
  if (K == 0) return {};
  const ConstArrayMap<T> W(w.value.data<T>(), n), L(lam.value.data<T>(), n);
  Tensor out = Tensor::empty(Shape{K, 1}, w.value.dtype());
  T* o = out.data<T>();
  for (std::int64_t k = 0; k < K; ++k) {
    const T* wd = tangent_row<T>(w.tangent, k, n);
    const T* ld = tangent_row<T>(lam.tangent, k, n);
    if (wd && ld) o[k] = (W * (L * ConstArrayMap<T>(wd, n) + T(0.5) * ConstArrayMap<T>(ld, n) * W)).sum();
    else if (wd) o[k] = (W * L * ConstArrayMap<T>(wd, n)).sum();
    else o[k] = T(0.5) * (ConstArrayMap<T>(ld, n) * W.square()).sum();
  }
  return out;
}

template <class T> Dual value_and_tangent(const Dual& w, const Dual& lam) {
  const std::int64_t n = w.value.numel();
  const ConstArrayMap<T> W(w.value.data<T>(), n), L(lam.value.data<T>(), n);
  Dual y(Tensor::full(Shape{}, static_cast<double>(T(0.5) * (L * W.square()).sum()), w.value.dtype()));
  y.tangent = tangent_of<T>(w, lam);
  return y;
}

// ---- the adjoints: one elementwise pass per output row -----------------------------------

/// out[k, i] = row(ġ_k, k)(i) for the K directions of an adjoint's tangent [K, n] (ġ_k = 0 when
/// ḡ has no tangent; row(ġ_k, k) sets up direction k once): one parallel region for all the
/// directions, not one per direction.
template <class T, class Row> void per_direction(const Dual& g, std::int64_t K, std::int64_t n, Tensor& out, Row&& row) {
  T* o = out.data<T>();
  const T* gt = g.has_tangent() ? g.tangent.data<T>() : nullptr;
  kernels::parallel_chunks(n, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t k = 0; k < K; ++k) {
      const auto at = row(gt ? gt[k] : T(0), k);
      T* ok = o + k * n;
      for (std::int64_t i = s; i < e; ++i) ok[i] = at(i);
    }
  });
}

struct AdjointTerms {
  bool w = false, lam = false;                  // which adjoints to compute
  bool w_tangent = false, lam_tangent = false;  // and which of their tangents
};

template <class T> void adjoints(const Dual& g, const Dual& w, const Dual& lam, const AdjointTerms& want, Dual& w_bar,
                                 Dual& lam_bar) {
  const std::int64_t n = w.value.numel();
  const T gv = g.value.data<T>()[0];
  const T* pw = w.value.data<T>();
  const T* pl = lam.value.data<T>();
  const std::int64_t K = std::max({g.K(), w.K(), lam.K()});
  const DType dt = w.value.dtype();
  // Row k of an adjoint's tangent: zero when ġ, ẇ and λ̇ all are (then left undefined).
  const bool any_tangent = K > 0;
  if (want.w) {
    w_bar = Dual(Tensor::empty(w.value.shape(), dt));
    T* o = w_bar.value.data<T>();
    kernels::parallel_chunks(n, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) o[i] = gv * pl[i] * pw[i];
    });
    if (want.w_tangent && any_tangent) {
      w_bar.tangent = Tensor::empty(Shape{K, n}, dt);
      // λ (ġ_k w + ḡ ẇ_k) + ḡ λ̇_k w
      per_direction<T>(g, K, n, w_bar.tangent, [&](T gd, std::int64_t k) {
        const T* wd = tangent_row<T>(w.tangent, k, n);
        const T* ld = tangent_row<T>(lam.tangent, k, n);
        return [=](std::int64_t i) {
          T d = gd * pw[i];
          if (wd) d += gv * wd[i];
          d *= pl[i];
          if (ld) d += gv * ld[i] * pw[i];
          return d;
        };
      });
    }
  }
  if (want.lam) {
    lam_bar = Dual(Tensor::empty(lam.value.shape(), dt));
    T* o = lam_bar.value.data<T>();
    const T half_g = T(0.5) * gv;
    kernels::parallel_chunks(n, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) o[i] = half_g * pw[i] * pw[i];
    });
    // λ̇ does not enter λ̄ = ½ ḡ w²: its tangent is zero unless ġ or ẇ is not.
    if (want.lam_tangent && (g.has_tangent() || w.has_tangent())) {
      lam_bar.tangent = Tensor::empty(Shape{K, n}, dt);
      // w (½ ġ_k w + ḡ ẇ_k)
      per_direction<T>(g, K, n, lam_bar.tangent, [&](T gd, std::int64_t k) {
        const T* wd = tangent_row<T>(w.tangent, k, n);
        const T half_gd = T(0.5) * gd;
        return [=](std::int64_t i) {
          T d = half_gd * pw[i];
          if (wd) d += gv * wd[i];
          return pw[i] * d;
        };
      });
    }
  }
}

// A device operand: the same formulas composed of the dual primitives (each of which offloads).
Dual composed_value(const Dual& w, const Dual& lam) {
  return dual::affine(dual::reduce(dual::mul(lam, dual::unary(kernels::UnaryOp::square, w)), 1, w.value.numel(), 1,
                                   1.0, Shape{}),
                      0.5, 0.0);
}
void composed_adjoints(const Dual& g, const Dual& w, const Dual& lam, const AdjointTerms& want, Dual& w_bar,
                       Dual& lam_bar) {
  if (want.w) w_bar = dual::mul(dual::mul(lam, w), g);
  if (want.lam) lam_bar = dual::affine(dual::mul(dual::unary(kernels::UnaryOp::square, w), g), 0.5, 0.0);
}

bool on_device(const Dual& a, const Dual& b) {
  return offload("weighted_l2", a.value, a.tangent, b.value, b.tangent) != nullptr;
}

// ---- rules: inputs w, λ ----------------------------------------------------------------------

Tensor weighted_l2_tangent(const Tape& t, const Node& n) {  // the value is n's already
  const Dual w = t.input(n, 0), lam = t.input(n, 1);
  if (on_device(w, lam)) return composed_value(w, lam).tangent;
  return dispatch_float(w.value.dtype(), "weighted_l2", [&](auto zero) { return tangent_of<decltype(zero)>(w, lam); });
}

void weighted_l2_backward(Tape& t, const Node& n, const Dual& g) {
  AdjointTerms want;
  want.w = t.needs_adjoint(n, 0);
  want.lam = t.needs_adjoint(n, 1);
  if (!want.w && !want.lam) return;
  // A tangent of an adjoint nobody asked for would be dropped by accumulate: not computed.
  want.w_tangent = t.needs_adjoint_tangent(n, 0);
  want.lam_tangent = t.needs_adjoint_tangent(n, 1);
  const Dual w = t.input(n, 0), lam = t.input(n, 1);
  Dual w_bar, lam_bar;
  if (on_device(w, lam) || offload("weighted_l2", g.value, g.tangent)) {
    composed_adjoints(g, w, lam, want, w_bar, lam_bar);
  } else {
    dispatch_float(w.value.dtype(), "weighted_l2", [&](auto zero) {
      adjoints<decltype(zero)>(g, w, lam, want, w_bar, lam_bar);
    });
  }
  if (want.w) t.accumulate(n, 0, std::move(w_bar));
  if (want.lam) t.accumulate(n, 1, std::move(lam_bar));
}

const OpRules kWeightedL2Rules = {"weighted_l2", weighted_l2_tangent, weighted_l2_backward, kReadsInputs};
GRADHPO_REGISTER_OPS(&kWeightedL2Rules);

}  // namespace

namespace dual {
Dual weighted_l2(const Dual& w, const Dual& lam) {
  if (on_device(w, lam)) return composed_value(w, lam);
  return dispatch_float(w.value.dtype(), "weighted_l2",
                        [&](auto zero) { return value_and_tangent<decltype(zero)>(w, lam); });
}
}  // namespace dual

Var weighted_l2(const Var& w, const Var& lam) {
  Tape& t = w.tape();
  t.check(w, "weighted_l2");
  t.check(lam, "weighted_l2");
  GRADHPO_CHECK(w.numel() == lam.numel(), "weighted_l2: w has " + std::to_string(w.numel()) + " elements, λ " +
                                              std::to_string(lam.numel()) + " (one per element expected)");
  GRADHPO_CHECK(w.dtype() == lam.dtype(), std::string("weighted_l2: mixed dtypes ") + dtype_name(w.dtype()) + " and " +
                                              dtype_name(lam.dtype()));
  return t.record(&kWeightedL2Rules, dual::weighted_l2(Dual(w.value()), Dual(lam.value())).value, {w, lam});
}

}  // namespace gradhpo
