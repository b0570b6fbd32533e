// Elementwise primitives: add, sub, mul, div (with broadcasting of a trailing-shape operand such
// as a bias row, or a one-element operand), affine maps by constants (x*a + b, covering negation
// and every scalar op), and the unary functions exp, log, tanh, sigmoid, relu, softplus, square,
// sqrt and reciprocal.
//
// Each primitive appears twice: on Duals (namespace dual: value and K tangents, no recording —
// the language the adjoint rules are written in) and on Vars (recorded on the tape).
#pragma once

#include "../kernels/math.h"
#include "../tape.h"

namespace gradhpo {
namespace dual {
Dual add(const Dual& a, const Dual& b);
Dual sub(const Dual& a, const Dual& b);
Dual mul(const Dual& a, const Dual& b);
Dual div(const Dual& a, const Dual& b);
/// The tangent of y = a op b (y given), or undefined when neither input has one.
Tensor binary_tangent(kernels::BinaryOp op, const Dual& a, const Dual& b, const Tensor& y);
Dual affine(const Dual& x, double scale, double shift);
Dual unary(kernels::UnaryOp op, const Dual& x);
/// f'(x) as a dual: value f'(x), tangent f''(x) ẋ. `y` is f(x).
Dual unary_derivative(kernels::UnaryOp op, const Dual& x, const Tensor& y);
/// Sums a broadcast result back to `n` elements (the adjoint of modular broadcasting).
Dual sum_to(const Dual& x, std::int64_t n, const Shape& shape);
}  // namespace dual

Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
/// x * scale + shift.
Var affine(const Var& x, double scale, double shift);
Var exp(const Var& x);
Var log(const Var& x);
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var relu(const Var& x);
Var softplus(const Var& x);
Var square(const Var& x);
Var sqrt(const Var& x);
Var reciprocal(const Var& x);

/// The shape a binary op produces from operands of shapes a and b; throws naming `op` when
/// they do not broadcast (equal shapes, a one-element operand, or a trailing-shape operand).
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

}  // namespace gradhpo
