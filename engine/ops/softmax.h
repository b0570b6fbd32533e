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

// The CPU kernels behind these ops, with the contracts of the DeviceBackend entries of the same
// names (engine/backend.h). Public so that the host-emulated device of the tests runs them.
namespace kernels {
Tensor log_softmax(const Tensor& x);
Tensor log_softmax_tangent(const Tensor& y, const Tensor& xt);
void log_softmax_backward(const Tensor& y, const Tensor& g, const Tensor& gt, const Tensor& yt, Tensor& xb,
                          Tensor& xb_tangent);
/// out[r] = x[r·C + labels[r mod B]] (on the operands' device); pick_scatter is its adjoint.
Tensor pick_gather(const Tensor& x, const Tensor& labels, std::int64_t rows, std::int64_t C);
Tensor pick_scatter(const Tensor& g, const Tensor& labels, std::int64_t rows, std::int64_t C);
}  // namespace kernels

}  // namespace gradhpo
