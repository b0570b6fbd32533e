#include "matmul.h"

#include "../backend.h"
#include "../kernels/gemm.h"
#include "../kernels/math.h"

#include <algorithm>

namespace gradhpo {
namespace {

struct Dims {
  std::int64_t m, k, n;
};

Dims product_dims(const char* op, const Shape& a, const Shape& b, bool ta, bool tb) {
  GRADHPO_CHECK(a.ndim() == 2 && b.ndim() == 2,
          std::string(op) + ": expected 2-D operands, got " + a.str() + " and " + b.str());
  const std::int64_t m = ta ? a[1] : a[0], ka = ta ? a[0] : a[1];
  const std::int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  GRADHPO_CHECK(ka == kb, std::string(op) + ": inner dimensions differ: a is " + a.str() + (ta ? "ᵀ" : "") +
                        ", b is " + b.str() + (tb ? "ᵀ" : ""));
  return {m, ka, n};
}

// C (+)= op(A) op(B) for the typed data of the given 2-D tensors.
void gemm_into(const Tensor& A, const Shape& a_shape, bool ta, const Tensor& B, const Shape& b_shape, bool tb,
               Tensor& C, bool accumulate) {
  if (const DeviceBackend* dev = offload("matmul", A, B, C))
    return dev->gemm(A, a_shape, ta, B, b_shape, tb, C, accumulate);
  dispatch_float(C.dtype(), "matmul", [&](auto zero) {
    using T = decltype(zero);
    kernels::gemm<T>(A.data<T>(), a_shape[0], a_shape[1], ta, B.data<T>(), b_shape[0], b_shape[1], tb,
                     C.data<T>(), T(1), accumulate ? T(1) : T(0));
  });
}

}  // namespace

namespace dual {

// ẏ_k = op(ȧ_k) op(b) + op(a) op(ḃ_k): the tangent of y = op(a) op(b), written into *t
// [K, m*n], or direction k into rows[k] (m*n elements each) when t is null.
void matmul_tangent_into(const Dual& a, const Dual& b, bool ta, bool tb, Tensor* t, const std::vector<Tensor>* rows) {
  const Shape& as = a.value.shape();
  const Shape& bs = b.value.shape();
  const Dims d = product_dims("matmul", as, bs, ta, tb);
  const std::int64_t K = t ? t->dim(0) : static_cast<std::int64_t>(rows->size());
  GRADHPO_CHECK((a.has_tangent() || b.has_tangent()) && (!a.has_tangent() || a.K() == K) && (!b.has_tangent() || b.K() == K),
                "matmul: a tangent block of " + std::to_string(K) + " rows for inputs with " + std::to_string(a.K()) +
                    " and " + std::to_string(b.K()));
  auto row = [&](std::int64_t k) { return t ? t->rows(k, 1) : (*rows)[static_cast<std::size_t>(k)]; };
  bool written = false;
  if (a.has_tangent()) {
    if (!ta && t) {
      // The K directions stacked as rows, [K*m, k]: one product for all of them.
      Tensor stacked = t->reshape(Shape{K * d.m, d.n});
      gemm_into(a.tangent, Shape{K * as[0], as[1]}, false, b.value, bs, tb, stacked, false);
    } else {
      for (std::int64_t k = 0; k < K; ++k) {
        Tensor tk = row(k);
        gemm_into(a.tangent.rows(k, 1), as, ta, b.value, bs, tb, tk, false);
      }
    }
    written = true;
  }
  if (b.has_tangent()) {
    // ḃ's directions sit in the second operand, so they cannot share one row-stacked product
    // (stacking them as columns needs two transposing copies, and measured no faster: issue 9).
    for (std::int64_t k = 0; k < K; ++k) {
      Tensor tk = row(k);
      gemm_into(a.value, as, ta, b.tangent.rows(k, 1), bs, tb, tk, written);
    }
  }
}

Tensor matmul_tangent(const Dual& a, const Dual& b, bool ta, bool tb) {
  const Dims d = product_dims("matmul", a.value.shape(), b.value.shape(), ta, tb);
  const std::int64_t K = a.has_tangent() ? a.K() : b.K();
  if (K == 0) return {};
  Tensor t = Tensor::empty(Shape{K, d.m * d.n}, a.value.dtype(), a.value.device());
  matmul_tangent_into(a, b, ta, tb, &t, nullptr);
  return t;
}

void matmul_into(const Dual& a, const Dual& b, bool ta, bool tb, Dual& y, const std::vector<Tensor>* tangent_rows,
                 bool value) {
  const Shape& as = a.value.shape();
  const Shape& bs = b.value.shape();
  const Dims d = product_dims("matmul", as, bs, ta, tb);
  GRADHPO_CHECK(a.value.dtype() == b.value.dtype(), std::string("matmul: mixed dtypes ") + dtype_name(a.value.dtype()) +
                                                  " and " + dtype_name(b.value.dtype()));
  GRADHPO_CHECK(y.value.numel() == d.m * d.n, "matmul: an output of " + std::to_string(y.value.numel()) +
                                                  " elements for a product of " + std::to_string(d.m * d.n));
  if (value) {
    Tensor c = y.value.reshape(Shape{d.m, d.n});
    gemm_into(a.value, as, ta, b.value, bs, tb, c, false);
  }
  if (y.tangent.defined()) matmul_tangent_into(a, b, ta, tb, &y.tangent, nullptr);
  else if (tangent_rows && !tangent_rows->empty()) matmul_tangent_into(a, b, ta, tb, nullptr, tangent_rows);
}

Dual matmul(const Dual& a, const Dual& b, bool ta, bool tb) {
  const Dims d = product_dims("matmul", a.value.shape(), b.value.shape(), ta, tb);
  Dual y(Tensor::empty(Shape{d.m, d.n}, a.value.dtype(), a.value.device()));
  const std::int64_t K = a.has_tangent() ? a.K() : b.K();
  if (K > 0) y.tangent = Tensor::empty(Shape{K, d.m * d.n}, a.value.dtype(), a.value.device());
  matmul_into(a, b, ta, tb, y);
  return y;
}

}  // namespace dual

namespace {

// Node: inputs a, b; MatmulPayload (which operands are transposed).
Tensor matmul_tangent(const Tape& t, const Node& n) {
  const MatmulPayload& m = n.payload_as<MatmulPayload>();
  return dual::matmul_tangent(t.input(n, 0), t.input(n, 1), m.trans_a, m.trans_b);
}

// Adjoints of y = op(a) op(b), for the four transpose cases:
//   y = a b:     ā = ḡ bᵀ,   b̄ = aᵀ ḡ
//   y = aᵀ b:    ā = b ḡᵀ,   b̄ = a ḡ
//   y = a bᵀ:    ā = ḡ b,    b̄ = ḡᵀ a
//   y = aᵀ bᵀ:   ā = bᵀ ḡᵀ,  b̄ = ḡᵀ aᵀ
void matmul_backward(Tape& t, const Node& n, const Dual& g) {
  const MatmulPayload& m = n.payload_as<MatmulPayload>();
  const bool ta = m.trans_a, tb = m.trans_b;
  // x̄_i = op(p) op(q), written where the tape says (a weight slice's gradient straight into
  // w's adjoint), with a tangent only when input i's adjoint keeps one.
  // A weight whose gradient nobody asked for (H·v alone) gets only the tangent product: the
  // value product, a pass over the other operand as costly as the tangent's, is skipped.
  auto contribute = [&](int i, const Dual& p, const Dual& q, bool tp, bool tq) {
    const bool tangent = t.needs_adjoint_tangent(n, i) && (p.has_tangent() || q.has_tangent());
    const bool value = t.needs_adjoint_value(n, i);
    if (!value && !tangent) return;
    std::vector<Tensor> rows;  // K > 1: the directions' pieces of w's adjoint tangent, if given
    Dual out = t.adjoint_destination(n, i, tangent ? std::max(p.K(), q.K()) : 0, &rows);
    if (!value) out.value.fill(0.0);
    dual::matmul_into(tangent ? p : p.value_only(), tangent ? q : q.value_only(), tp, tq, out, &rows, value);
    t.accumulate(n, i, std::move(out));
  };
  if (t.needs_adjoint(n, 0)) {
    const Dual b = t.input(n, 1);
    ta ? contribute(0, b, g, tb, true) : contribute(0, g, b, false, !tb);
  }
  if (t.needs_adjoint(n, 1)) {
    const Dual a = t.input(n, 0);
    tb ? contribute(1, g, a, true, ta) : contribute(1, a, g, !ta, false);
  }
}

const OpRules kMatmulRules = {"matmul", matmul_tangent, matmul_backward, kReadsInputs};
GRADHPO_REGISTER_OPS(&kMatmulRules);

}  // namespace

Var matmul(const Var& a, const Var& b, bool trans_a, bool trans_b) {
  Tape& t = a.tape();
  t.check(a, "matmul");
  t.check(b, "matmul");
  Tensor y = dual::matmul(Dual(a.value()), Dual(b.value()), trans_a, trans_b).value;
  return t.record(&kMatmulRules, std::move(y), {a, b}, MatmulPayload{trans_a, trans_b});
}

}  // namespace gradhpo
