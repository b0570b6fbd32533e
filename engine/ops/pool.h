// Pooling over NCHW images (no padding): max pooling, average pooling, and global average
// pooling [N, C, H, W] -> [N, C].
//
// Max pooling records, per output, the position of its window's maximum (an int32 tensor in
// Node::saved; ties go to the first maximum in row-major window order, as in PyTorch). Given
// those positions it is linear, so every rule is a gather or a scatter:
//   ẏ = ẋ gathered at the argmax,   x̄ = ḡ scattered (added) to the argmax,   x̄̇ = ġ scattered,
// the second-order term being zero (the argmax is piecewise constant). Average pooling is
// linear too: its tangent is the same pooling of ẋ and its adjoint spreads ḡ / k² over each
// window. Tangent blocks [K, N·C·H·W] are pooled as K·N·C more planes.
#pragma once

#include "../tape.h"

namespace gradhpo {

/// Max over kernel×kernel windows taken every `stride` pixels: [N, C, H, W] -> [N, C, Ho, Wo],
/// Ho = (H − kernel) / stride + 1.
Var max_pool2d(const Var& x, int kernel, int stride);
/// Mean over kernel×kernel windows taken every `stride` pixels.
Var avg_pool2d(const Var& x, int kernel, int stride);
/// Mean over H and W: [N, C, H, W] -> [N, C].
Var global_avg_pool(const Var& x);

}  // namespace gradhpo
