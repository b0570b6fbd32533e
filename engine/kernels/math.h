// Value-level tensor math on the CPU: the kernels every primitive's value and tangent rules are
// built from. No autodiff here, just arithmetic on tensors.
//
// Broadcasting is "modular": when one operand has fewer elements than the other, its element
// count must divide the larger count and element i of the larger pairs with element
// i mod n_small of the smaller. In row-major layout this is exactly numpy's broadcasting of a
// trailing-shape operand (a bias row against a batch, a scalar against anything), and it is also
// what a tangent block [K, n] against a value [n] needs — one rule serves both.
//
// Each function runs on the device of its operands: a device tensor sends the call to that
// device's backend (engine/backend.h), the CPU loops here use the element functors the device
// kernels use too (element.h).
#pragma once

#include "../tensor.h"
#include "element.h"  // BinaryOp, UnaryOp and their scalar formulas

namespace gradhpo::kernels {

/// out = a op b with modular broadcasting; the result has the larger operand's shape.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
/// acc += alpha * x. x has acc's element count, or fewer (modular broadcast).
void axpy(Tensor& acc, const Tensor& x, double alpha = 1.0);
/// a * x + b, elementwise.
Tensor affine(const Tensor& x, double a, double b);

const char* unary_name(UnaryOp op);
/// y = f(x).
Tensor unary(UnaryOp op, const Tensor& x);
/// f'(x) (order 1) or f''(x) (order 2), given x and y = f(x).
Tensor unary_derivative(UnaryOp op, const Tensor& x, const Tensor& y, int order);

/// relu's adjoint in one pass: g ⊙ [x > 0], where g has x's element count or is a block of
/// directions [K, x.numel()] (each row masked alike). The same as binary(mul, g,
/// unary_derivative(relu, x, x, 1)) without the mask tensor.
Tensor relu_backward(const Tensor& g, const Tensor& x);
/// Views x as [A, B, C] and sums over B: returns [A, C] (as a flat tensor of A*C elements),
/// times `scale`.
Tensor reduce_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);
/// Views x as [A, C] and repeats it over a new middle axis: returns [A, B, C] flat, times scale.
Tensor expand_middle(const Tensor& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale);

}  // namespace gradhpo::kernels
