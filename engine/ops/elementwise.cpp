#include "elementwise.h"

#include "../dual_math.h"

namespace gradhpo {

using kernels::BinaryOp;
using kernels::UnaryOp;

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  if (a == b) return a;
  // Of equal sizes, the one with more dimensions is the result: [1, C] + [C] is [1, C] (a
  // batch of one plus a bias row).
  const bool a_big = a.numel() > b.numel() || (a.numel() == b.numel() && a.ndim() >= b.ndim());
  const Shape& big = a_big ? a : b;
  const Shape& small = a_big ? b : a;
  if (small.numel() == 1) return big;
  // The small shape, without leading 1s, must equal the big shape's trailing dimensions.
  int first = 0;
  while (first < small.ndim() && small[first] == 1) ++first;
  const int trailing = small.ndim() - first;
  bool ok = trailing <= big.ndim();
  for (int i = 0; ok && i < trailing; ++i) ok = small[first + i] == big[big.ndim() - trailing + i];
  // Equal sizes broadcast only when the shapes differ by leading 1s ([1, C] and [C], not [C, 1]).
  for (int i = 0; ok && small.numel() == big.numel() && i < big.ndim() - trailing; ++i) ok = big[i] == 1;
  GRADHPO_CHECK(ok, std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                  " do not broadcast (expected equal shapes, a one-element operand, or one whose "
                  "shape is the other's trailing dimensions)");
  return big;
}

namespace dual {

Dual sum_to(const Dual& x, std::int64_t n, const Shape& shape) {
  const std::int64_t N = x.value.numel();
  if (n == N) return Dual(x.value.reshape(shape), x.tangent);
  Dual r(kernels::reduce_middle(x.value, 1, N / n, n, 1.0).reshape(shape));
  if (x.has_tangent()) r.tangent = sum_block_to(x.tangent, n);
  return r;
}

// Tangent rules of the binary ops, given the inputs and the output value y (so the value is
// never computed twice: the Dual functions below and the tape's tangent sweep share these).
Tensor binary_tangent(BinaryOp op, const Dual& a, const Dual& b, const Tensor& y) {
  const std::int64_t N = y.numel();
  Tensor t;
  switch (op) {
    case BinaryOp::add:  // ẏ = ȧ + ḃ, each broadcast to the result's size
    case BinaryOp::sub:  // ẏ = ȧ − ḃ
      if (a.has_tangent()) add_to(t, broadcast_block(a.tangent, N));
      if (b.has_tangent()) add_to(t, broadcast_block(b.tangent, N), op == BinaryOp::add ? 1.0 : -1.0);
      break;
    case BinaryOp::mul:  // ẏ = ȧ b + a ḃ
      if (a.has_tangent()) add_to(t, block_op_value(BinaryOp::mul, a.tangent, b.value));
      if (b.has_tangent()) add_to(t, value_op_block(BinaryOp::mul, a.value, b.tangent));
      break;
    case BinaryOp::div:  // ẏ = ȧ / b − (y / b) ḃ
      if (a.has_tangent()) add_to(t, block_op_value(BinaryOp::div, a.tangent, b.value));
      if (b.has_tangent())
        add_to(t, value_op_block(BinaryOp::mul, kernels::binary(BinaryOp::div, y, b.value), b.tangent), -1.0);
      break;
  }
  return t;
}

namespace {
Dual binary(BinaryOp op, const Dual& a, const Dual& b) {
  Dual y(kernels::binary(op, a.value, b.value));
  if (a.has_tangent() || b.has_tangent()) y.tangent = binary_tangent(op, a, b, y.value);
  return y;
}
}  // namespace

Dual add(const Dual& a, const Dual& b) { return binary(BinaryOp::add, a, b); }
Dual sub(const Dual& a, const Dual& b) { return binary(BinaryOp::sub, a, b); }
Dual mul(const Dual& a, const Dual& b) { return binary(BinaryOp::mul, a, b); }
Dual div(const Dual& a, const Dual& b) { return binary(BinaryOp::div, a, b); }

Dual affine(const Dual& x, double scale, double shift) {
  Dual y(kernels::affine(x.value, scale, shift));
  if (x.has_tangent()) y.tangent = kernels::affine(x.tangent, scale, 0.0);
  return y;
}

// d f(x) = f'(x) ẋ
Dual unary(UnaryOp op, const Dual& x) {
  Dual y(kernels::unary(op, x.value));
  if (x.has_tangent())
    y.tangent = block_op_value(BinaryOp::mul, x.tangent, kernels::unary_derivative(op, x.value, y.value, 1));
  return y;
}

Dual unary_derivative(UnaryOp op, const Dual& x, const Tensor& y) {
  Dual d(kernels::unary_derivative(op, x.value, y, 1));
  // relu'' is identically zero: its tangent f''(x) ẋ is zero, so it is left undefined (no K×N
  // product of zeros, and the adjoint's tangent is then ġ f'(x) alone).
  if (x.has_tangent() && op != UnaryOp::relu)
    d.tangent = block_op_value(BinaryOp::mul, x.tangent, kernels::unary_derivative(op, x.value, y, 2));
  return d;
}

}  // namespace dual

namespace {

// ---- add / sub / mul / div -------------------------------------------------------------------
// Node: inputs a, b; BinaryPayload. A broadcast operand's adjoint is summed back to its own size.

Tensor binary_node_tangent(const Tape& t, const Node& n) {
  return dual::binary_tangent(n.payload_as<BinaryPayload>().op, t.input(n, 0), t.input(n, 1), n.value);
}

void binary_backward(Tape& t, const Node& n, const Dual& g) {
  const BinaryOp op = n.payload_as<BinaryPayload>().op;
  const Tensor& av = t.input_value(n, 0);
  const Tensor& bv = t.input_value(n, 1);
  auto to_a = [&](const Dual& c) { t.accumulate(n, 0, dual::sum_to(c, av.numel(), av.shape())); };
  auto to_b = [&](const Dual& c) { t.accumulate(n, 1, dual::sum_to(c, bv.numel(), bv.shape())); };
  switch (op) {
    case BinaryOp::add:  // ā += ḡ, b̄ += ḡ
      if (t.needs_adjoint(n, 0)) to_a(g);
      if (t.needs_adjoint(n, 1)) to_b(g);
      break;
    case BinaryOp::sub:  // ā += ḡ, b̄ −= ḡ
      if (t.needs_adjoint(n, 0)) to_a(g);
      if (t.needs_adjoint(n, 1)) to_b(dual::affine(g, -1.0, 0.0));
      break;
    case BinaryOp::mul:  // ā += ḡ b, b̄ += ḡ a
      if (t.needs_adjoint(n, 0)) to_a(dual::mul(g, t.input(n, 1)));
      if (t.needs_adjoint(n, 1)) to_b(dual::mul(g, t.input(n, 0)));
      break;
    case BinaryOp::div: {  // ā += ḡ / b, b̄ −= (ḡ / b) y
      const Dual g_over_b = dual::div(g, t.input(n, 1));
      if (t.needs_adjoint(n, 0)) to_a(g_over_b);
      if (t.needs_adjoint(n, 1)) to_b(dual::affine(dual::mul(g_over_b, t.output(n)), -1.0, 0.0));
      break;
    }
  }
}

const OpRules kBinaryRules[] = {
    {"add", binary_node_tangent, binary_backward, 0},
    {"sub", binary_node_tangent, binary_backward, 0},
    {"mul", binary_node_tangent, binary_backward, kReadsInputs},
    {"div", binary_node_tangent, binary_backward, (1u << 1) | kReadsOutput},
};

Var record_binary(BinaryOp op, const Var& a, const Var& b) {
  const OpRules* rules = &kBinaryRules[static_cast<int>(op)];
  Tape& t = a.tape();
  t.check(b, rules->name);
  const Shape shape = broadcast_shape(rules->name, a.shape(), b.shape());
  Tensor value = kernels::binary(op, a.value(), b.value()).reshape(shape);
  return t.record(rules, std::move(value), {a, b}, BinaryPayload{op});
}

// ---- affine: y = x * scale + shift -------------------------------------------------------------
// Node: input x; AffinePayload (the scale: the shift has no derivative).

Tensor affine_tangent(const Tape& t, const Node& n) {
  return kernels::affine(t.node_at(t.input_id(n, 0)).tangent, n.payload_as<AffinePayload>().scale, 0.0);
}
void affine_backward(Tape& t, const Node& n, const Dual& g) {  // x̄ += scale ḡ
  if (t.needs_adjoint(n, 0)) t.accumulate(n, 0, dual::affine(g, n.payload_as<AffinePayload>().scale, 0.0));
}
const OpRules kAffineRules = {"affine", affine_tangent, affine_backward, 0};

// ---- unary functions ---------------------------------------------------------------------------
// Node: input x; UnaryPayload (the function). x̄ += ḡ f'(x), with f'(x) a dual so that forward-over-
// reverse picks up f''(x) ẋ.

Tensor unary_tangent(const Tape& t, const Node& n) {
  const UnaryOp op = n.payload_as<UnaryPayload>().op;
  const Tensor& x = t.input_value(n, 0);
  return dual::block_op_value(BinaryOp::mul, t.node_at(t.input_id(n, 0)).tangent,
                              kernels::unary_derivative(op, x, n.value, 1));
}
void unary_backward(Tape& t, const Node& n, const Dual& g) {
  if (!t.needs_adjoint(n, 0)) return;
  const UnaryOp op = n.payload_as<UnaryPayload>().op;
  if (op == UnaryOp::relu) {
    // x̄ = ḡ [x > 0] in one pass (no mask tensor, no second pass to multiply); relu'' = 0, so the
    // adjoint's tangent is ġ [x > 0], masked alike: the general rule below, fused.
    const Tensor& x = t.input_value(n, 0);
    Dual c(kernels::relu_backward(g.value, x));
    if (g.has_tangent()) c.tangent = kernels::relu_backward(g.tangent, x);
    return t.accumulate(n, 0, std::move(c));
  }
  t.accumulate(n, 0, dual::mul(g, dual::unary_derivative(op, t.input(n, 0), n.value)));
}
// Reads x as a dual (f'(x) carries f''(x) ẋ); y only as a value.
const OpRules kUnaryRules = {"unary", unary_tangent, unary_backward, 1u};
// relu's backward reads x as a value only (relu'' = 0): no tangent of x is computed for it.
const OpRules kReluRules = {"relu", unary_tangent, unary_backward, 0};
GRADHPO_REGISTER_OPS(&kBinaryRules[0], &kBinaryRules[1], &kBinaryRules[2], &kBinaryRules[3], &kAffineRules, &kUnaryRules,
                     &kReluRules);

Var record_unary(UnaryOp op, const Var& x) {
  Tape& t = x.tape();
  t.check(x, kernels::unary_name(op));
  return t.record(op == UnaryOp::relu ? &kReluRules : &kUnaryRules, kernels::unary(op, x.value()), {x},
                  UnaryPayload{op});
}

}  // namespace

Var add(const Var& a, const Var& b) { return record_binary(BinaryOp::add, a, b); }
Var sub(const Var& a, const Var& b) { return record_binary(BinaryOp::sub, a, b); }
Var mul(const Var& a, const Var& b) { return record_binary(BinaryOp::mul, a, b); }
Var div(const Var& a, const Var& b) { return record_binary(BinaryOp::div, a, b); }

Var affine(const Var& x, double scale, double shift) {
  Tape& t = x.tape();
  t.check(x, "affine");
  return t.record(&kAffineRules, kernels::affine(x.value(), scale, shift), {x}, AffinePayload{scale});
}

Var exp(const Var& x) { return record_unary(UnaryOp::exp, x); }
Var log(const Var& x) { return record_unary(UnaryOp::log, x); }
Var tanh(const Var& x) { return record_unary(UnaryOp::tanh, x); }
Var sigmoid(const Var& x) { return record_unary(UnaryOp::sigmoid, x); }
Var relu(const Var& x) { return record_unary(UnaryOp::relu, x); }
Var softplus(const Var& x) { return record_unary(UnaryOp::softplus, x); }
Var square(const Var& x) { return record_unary(UnaryOp::square, x); }
Var sqrt(const Var& x) { return record_unary(UnaryOp::sqrt, x); }
Var reciprocal(const Var& x) { return record_unary(UnaryOp::reciprocal, x); }

}  // namespace gradhpo
