// Reductions: sum and mean over everything or over one axis, and the dot product of two
// tensors of equal size. The adjoint of a sum is a broadcast (expand) of ḡ.
#pragma once

#include "../tape.h"

namespace gradhpo {
namespace dual {
/// Views x as [A, B, C] and sums over B, times scale: [A*C] (reshaped to `shape`).
Dual reduce(const Dual& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale, const Shape& shape);
/// Views x as [A, C] and repeats it B times in the middle, times scale: [A*B*C] as `shape`.
Dual expand(const Dual& x, std::int64_t A, std::int64_t B, std::int64_t C, double scale, const Shape& shape);
}  // namespace dual

Var sum(const Var& x);
Var mean(const Var& x);
/// Sum over `axis` (negative counts from the end); the axis is removed from the shape.
Var sum(const Var& x, int axis);
Var mean(const Var& x, int axis);
/// Σ a_i b_i over all elements; a and b must have the same number of elements.
Var dot(const Var& a, const Var& b);

}  // namespace gradhpo
