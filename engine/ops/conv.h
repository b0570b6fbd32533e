// 2-D convolution of NCHW images, y = conv2d(x, W) (cross-correlation, as in every framework):
//   x [N, C, H, W], W [O, C, kh, kw]  ->  y [N, O, Ho, Wo],  Ho = (H + 2·padding − kh) / stride + 1,
// with zero padding. Computed by direct kernels or im2col + GEMM, as kernels::conv_algorithm
// chooses, parallel over images (engine/kernels/conv.h).
//
// The forward product and both adjoint products are bilinear:
//   y  = F(x, W)           ẏ  = F(ẋ, W) + F(x, Ẇ)
//   x̄  = Bx(ḡ, W)          x̄̇  = Bx(ġ, W) + Bx(ḡ, Ẇ)      (transposed convolution)
//   W̄  = Bw(ḡ, x)          W̄̇  = Bw(ġ, x) + Bw(ḡ, ẋ)      (correlation of ḡ with x)
// so each Dual version below is two calls of a value kernel: the K tangent directions of an
// activation are K·N more images, and the filters' directions [W; Ẇ_1..Ẇ_K] share one GEMM per
// image. The backward rule is written with these Dual products, so forward-over-reverse (H v,
// mixed products) needs no extra code. A zero (undefined) tangent costs nothing, and the data
// batch (an input that needs no adjoint) gets no x̄.
#pragma once

#include "../tape.h"

namespace gradhpo {
namespace dual {
/// y = conv2d(x, w) with its K tangents.
Dual conv2d(const Dual& x, const Dual& w, int stride, int padding);
/// x̄ = the adjoint of conv2d with respect to x, for output adjoint gy; x has shape `x_shape`.
Dual conv2d_backward_input(const Dual& gy, const Dual& w, const Shape& x_shape, int stride, int padding);
/// W̄ = the adjoint of conv2d with respect to w, for output adjoint gy; w has shape `w_shape`.
Dual conv2d_backward_weight(const Dual& gy, const Dual& x, const Shape& w_shape, int stride, int padding);
}  // namespace dual

/// y = conv2d(x, weight): x [N, C, H, W], weight [O, C, kh, kw] -> [N, O, Ho, Wo], zero padding.
/// Throws gradhpo::Error (naming the op and the shapes) on a wrong number of dimensions, a
/// channel mismatch, a kernel larger than the padded input, or mixed dtypes.
Var conv2d(const Var& x, const Var& weight, int stride = 1, int padding = 0);
/// conv2d(x, weight) + bias broadcast over N, Ho, Wo; bias [O].
Var conv2d(const Var& x, const Var& weight, const Var& bias, int stride = 1, int padding = 0);

}  // namespace gradhpo
