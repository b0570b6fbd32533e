// Per-channel primitives on [N, C, ...] tensors (NCHW images, or [N, C] features): a channel
// vector [C] broadcast over every axis but the channel axis (1), and sums over those axes.
//
//   channel_affine(x, s, b) = x ⊙ s[c] + b[c]     (conv bias, batch-norm scale and shift)
//   channel_sum(x)          = Σ_{n, h, w} x        -> [C]
//
// channel_affine is bilinear in (x, s) plus linear in b:
//   ẏ = ẋ ⊙ s + x ⊙ ṡ + ḃ,   x̄ = ḡ ⊙ s,   s̄ = Σ_{n,h,w} ḡ ⊙ x,   b̄ = Σ_{n,h,w} ḡ,
// and its backward rule is written with the Dual functions below (channel_affine,
// channel_dot, channel_sum), so it carries tangents itself (forward-over-reverse).
// Tangent blocks [K, N·C·...] are handled as K·N samples: no per-direction loops over data.
#pragma once

#include "../tape.h"

namespace gradhpo {
namespace dual {
/// y = x ⊙ scale[c] + shift[c]; either of scale, shift may be null (absent). Vectors are [C].
Dual channel_affine(const Dual& x, const Dual* scale, const Dual* shift);
/// Σ over every axis but the channel axis: [C].
Dual channel_sum(const Dual& x);
/// Σ over every axis but the channel axis of a ⊙ b: [C]. a and b have the same shape.
Dual channel_dot(const Dual& a, const Dual& b);
/// A [C] vector repeated over every axis but the channel axis of `shape`.
Dual channel_broadcast(const Dual& v, const Shape& shape);
}  // namespace dual

/// x + bias[c], broadcast over all axes but axis 1; x is [N, C, ...], bias [C].
Var channel_bias(const Var& x, const Var& bias);
/// x ⊙ scale[c]; x is [N, C, ...], scale [C].
Var channel_scale(const Var& x, const Var& scale);
/// x ⊙ scale[c] + shift[c] in one pass.
Var channel_affine(const Var& x, const Var& scale, const Var& shift);
/// Σ over every axis but axis 1: [N, C, ...] -> [C].
Var channel_sum(const Var& x);

}  // namespace gradhpo
