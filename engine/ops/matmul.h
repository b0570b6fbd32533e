// Matrix product of 2-D operands, y = op(a) op(b) with op = identity or transpose. The
// transposed forms exist because the adjoint rules need them: for y = a b,
//   ā = ḡ bᵀ,  b̄ = aᵀ ḡ,
// and those products must themselves be duals for forward-over-reverse.
#pragma once

#include <vector>

#include "../tape.h"

namespace gradhpo {
namespace dual {
Dual matmul(const Dual& a, const Dual& b, bool trans_a = false, bool trans_b = false);
/// The tangent alone (the value is already known), or undefined when neither input has one.
Tensor matmul_tangent(const Dual& a, const Dual& b, bool trans_a, bool trans_b);
/// The product written into y: y.value (m·n elements) and, when defined, y.tangent [K, m·n];
/// else, when given and not empty, direction k into tangent_rows[k] (m·n elements each).
/// Without `value`, y.value is left alone: the tangent alone.
void matmul_into(const Dual& a, const Dual& b, bool trans_a, bool trans_b, Dual& y,
                 const std::vector<Tensor>* tangent_rows = nullptr, bool value = true);
}
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
}  // namespace gradhpo
