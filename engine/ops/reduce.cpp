#include "reduce.h"

#include "../kernels/math.h"
#include "elementwise.h"

namespace gradhpo {
namespace dual {

Dual reduce(const Dual& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale, const Shape& shape) {
  Dual y(kernels::reduce_middle(x.value, A, B, C, scale).reshape(shape));
  if (x.has_tangent()) {
    const std::int64_t K = x.K();
    y.tangent = kernels::reduce_middle(x.tangent, K * A, B, C, scale).reshape(Shape{K, A * C});
  }
  return y;
}

Dual expand(const Dual& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale, const Shape& shape) {
  Dual y(kernels::expand_middle(x.value, A, B, C, scale).reshape(shape));
  if (x.has_tangent()) {
    const std::int64_t K = x.K();
    y.tangent = kernels::expand_middle(x.tangent, K * A, B, C, scale).reshape(Shape{K, A * B * C});
  }
  return y;
}

}  // namespace dual

namespace {

// Node: input x; ReducePayload: x as [outer, reduced, inner], and the scale (1 for sum, 1/reduced
// for mean).
Tensor reduce_tangent(const Tape& t, const Node& n) {
  const Dual x = t.input(n, 0);
  const ReducePayload& r = n.payload_as<ReducePayload>();
  return dual::reduce(x, r.outer, r.reduced, r.inner, r.scale, n.value.shape()).tangent;
}
void reduce_backward(Tape& t, const Node& n, const Dual& g) {  // x̄ += scale · expand(ḡ)
  if (!t.needs_adjoint(n, 0)) return;
  const Shape& xs = t.input_value(n, 0).shape();
  const ReducePayload& r = n.payload_as<ReducePayload>();
  t.accumulate(n, 0, dual::expand(g, r.outer, r.reduced, r.inner, r.scale, xs));
}
const OpRules kReduceRules = {"sum", reduce_tangent, reduce_backward, 0};

Var record_reduce(const Var& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale, const Shape& shape) {
  Tape& t = x.tape();
  t.check(x, "sum");
  Tensor y = kernels::reduce_middle(x.value(), A, B, C, scale).reshape(shape);
  return t.record(&kReduceRules, std::move(y), {x}, ReducePayload{A, B, C, scale});
}

Var reduce_axis(const Var& x, int axis, bool average) {
  const Shape& s = x.shape();
  const int nd = s.ndim();
  const int a = axis < 0 ? axis + nd : axis;
  GRADHPO_CHECK(a >= 0 && a < nd, std::string(average ? "mean" : "sum") + ": axis " + std::to_string(axis) +
                                " out of range for shape " + s.str());
  std::vector<std::int64_t> dims;
  for (int i = 0; i < nd; ++i)
    if (i != a) dims.push_back(s[i]);
  const std::int64_t B = s[a];
  return record_reduce(x, s.outer(a), B, s.inner(a), average ? 1.0 / static_cast<double>(B) : 1.0, Shape(dims));
}

// ---- dot: y = Σ a b; ẏ_k = ȧ_k·b + a·ḃ_k; ā += ḡ b, b̄ += ḡ a --------------------------------

Dual dual_dot(const Dual& a, const Dual& b) {
  return dual::reduce(dual::mul(a, b), 1, a.value.numel(), 1, 1.0, Shape{});
}
Tensor dot_tangent(const Tape& t, const Node& n) { return dual_dot(t.input(n, 0), t.input(n, 1)).tangent; }
void dot_backward(Tape& t, const Node& n, const Dual& g) {
  if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, dual::mul(t.input(n, 1), g));
  if (t.needs_adjoint(n, 1)) t.accumulate(n, 1, dual::mul(t.input(n, 0), g));
}
const OpRules kDotRules = {"dot", dot_tangent, dot_backward, kReadsInputs};
GRADHPO_REGISTER_OPS(&kReduceRules, &kDotRules);

}  // namespace

Var sum(const Var& x) { return record_reduce(x, 1, x.numel(), 1, 1.0, Shape{}); }
Var mean(const Var& x) {
  GRADHPO_CHECK(x.numel() > 0, "mean: empty tensor " + x.shape().str());
  return record_reduce(x, 1, x.numel(), 1, 1.0 / static_cast<double>(x.numel()), Shape{});
}
Var sum(const Var& x, int axis) { return reduce_axis(x, axis, false); }
Var mean(const Var& x, int axis) { return reduce_axis(x, axis, true); }

Var dot(const Var& a, const Var& b) {
  Tape& t = a.tape();
  t.check(a, "dot");
  t.check(b, "dot");
  GRADHPO_CHECK(a.numel() == b.numel(), "dot: operands have " + std::to_string(a.numel()) + " and " +
                                      std::to_string(b.numel()) + " elements (" + a.shape().str() + " and " +
                                      b.shape().str() + ")");
  Tensor y = dual_dot(Dual(a.value()), Dual(b.value())).value;
  return t.record(&kDotRules, std::move(y), {a, b});
}

}  // namespace gradhpo
