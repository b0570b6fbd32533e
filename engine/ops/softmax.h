// Log-softmax over the last axis of [B, C] logits, picking one entry per row by integer label,
// and the cross-entropy losses built from them:
//   cross_entropy_per_example(z, y)_i = −log_softmax(z)_{i, y_i}    ([B], for weighted losses)
//   cross_entropy(z, y)               = mean_i of the above         (scalar)
#pragma once

#include <vector>

#include "../tape.h"

namespace gradhpo {

Var log_softmax(const Var& logits);
/// out_i = x[i, labels_i] for x of shape [B, C] and labels an int32 tensor [B] in [0, C).
Var pick(const Var& x, const Tensor& labels);
Var cross_entropy_per_example(const Var& logits, const Tensor& labels);
Var cross_entropy(const Var& logits, const Tensor& labels);

}  // namespace gradhpo
