// Tangent-block arithmetic shared by the primitives' tangent rules.
//
// A tangent block is [K, n]. These helpers combine a block with a value tensor (which has no K
// axis) under the modular broadcasting of kernels/math.h, looping over the K directions only
// when the block is the smaller side.
#pragma once

#include "dual.h"
#include "kernels/math.h"

namespace gradhpo::dual {

/// [K, na] op value[nb] -> [K, max(na, nb)].
Tensor block_op_value(kernels::BinaryOp op, const Tensor& block, const Tensor& value);
/// value[na] op [K, nb] -> [K, max(na, nb)].
Tensor value_op_block(kernels::BinaryOp op, const Tensor& value, const Tensor& block);
/// A block [K, n] repeated to [K, N] (N a multiple of n); returned as is when n == N.
Tensor broadcast_block(const Tensor& block, std::int64_t N);
/// [K, N] summed down to [K, n] over the broadcast rows (the adjoint of broadcast_block).
Tensor sum_block_to(const Tensor& block, std::int64_t n);
/// acc += alpha * t, where either may be undefined (zero). When acc is empty it takes t's
/// storage if nobody else holds it (pass a temporary or std::move), else a copy, because later
/// contributions are added to acc in place.
void add_to(Tensor& acc, Tensor t, double alpha = 1.0);
/// Number of directions of a tangent block (0 when undefined).
inline std::int64_t directions(const Tensor& block) { return block.defined() ? block.dim(0) : 0; }

}  // namespace gradhpo::dual
