// The per-parameter L2 penalty as one primitive: y = ½ Σ_i λ_i w_i².
//
// Written as `0.5 * sum(lam * square(w))` it costs a square, a product and a sum on the value,
// and in a mixed product ∂_λ(v·∇_w L) each of those again on the tangent and in dual form on
// the backward sweep: about twenty passes over a parameter-sized array, a fifth of an MLP's
// mixed product (issue 9's profile). Here each rule is one pass:
//   value     y   = ½ Σ λ w²
//   tangent   ẏ_k = Σ w (λ ẇ_k + ½ λ̇_k w)
//   adjoints  w̄  = ḡ λ w,    its tangent  λ (ġ_k w + ḡ ẇ_k) + ḡ λ̇_k w
//             λ̄  = ½ ḡ w²,   its tangent  w (½ ġ_k w + ḡ ẇ_k)
// (the adjoints' tangents are the forward-mode derivatives of the two adjoint formulas).
#pragma once

#include "../tape.h"

namespace gradhpo {
namespace dual {
/// ½ Σ λ w² with its tangent; w and λ have the same number of elements.
Dual weighted_l2(const Dual& w, const Dual& lam);
}  // namespace dual

/// ½ Σ_i λ_i w_i², a scalar; λ has one entry per element of w.
Var weighted_l2(const Var& w, const Var& lam);

}  // namespace gradhpo
