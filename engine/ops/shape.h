// Shape primitives: reshape (a view), and slice/concat of flat vectors — how a model cuts its
// named parameter tensors out of one flat parameter vector w, and how per-layer pieces are put
// back together.
#pragma once

#include <vector>

#include "../tape.h"

namespace gradhpo {
namespace dual {
/// Elements [start, start + length) of the flattened x.
Dual slice(const Dual& x, std::int64_t start, std::int64_t length);
}  // namespace dual

Var reshape(const Var& x, const Shape& shape);
/// Elements [start, start + length) of the flattened x, as a tensor of `shape` (numel = length).
Var slice(const Var& x, std::int64_t start, const Shape& shape);
/// The flattened inputs one after another, as a 1-D tensor.
Var concat(const std::vector<Var>& parts);

}  // namespace gradhpo
