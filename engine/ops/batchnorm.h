// Batch normalization (Ioffe & Szegedy 2015, Algorithm 1) of [N, C, H, W] images or [N, C]
// features, per channel c over the m = N·H·W values of that channel:
//
//   μ = mean(x),  σ² = mean((x − μ)²) (biased),  s = 1 / sqrt(σ² + eps),
//   x̂ = (x − μ) s,                                  -- batch_standardize, a fused primitive
//   y = γ x̂ + β                                      -- channel_affine (engine/ops/channel.h)
//
// Training mode differentiates THROUGH the batch statistics. The Jacobian of x ↦ x̂ is, per
// channel, the symmetric matrix J = s (I − 11ᵀ/m − x̂ x̂ᵀ/m), so the tangent and the adjoint
// have the same form:
//   x̂̇ = s (ẋ − mean(ẋ) − x̂ mean(x̂ ẋ)),      x̄ = s (ḡ − mean(ḡ) − x̂ mean(x̂ ḡ)),
// and the adjoint's own tangent (forward-over-reverse: H v and mixed products through the
// statistics), with a = mean(x̂ ẋ) (so ṡ = −s² a) and b = mean(x̂ ḡ):
//   x̄̇ = −s a x̄ + s (ġ − mean(ġ) − x̂ mean(x̂ ġ)) − s (b x̂̇ + x̂ mean(x̂̇ ḡ)).
// Each is two passes over a channel (sums, then the update), all K directions together.
//
// Synchronized statistics (data-parallel training, like PyTorch's SyncBatchNorm): when the tape
// has a shard sum (Tape::shard_sum), each process holds a shard of the batch, and every mean
// above — μ, σ², and the means in the tangent and adjoint rules — is the whole batch's: this
// process's channel sums, summed over the shards by the hook (one call per op and rule for all
// channels), divided by the whole batch's count. Each process gets its own rows of the whole
// batch's x̂, x̂̇, x̄ and x̄̇; γ̄ and β̄ stay sums over its own rows (data-parallel training sums
// the gradients over the shards). Every process must record and differentiate the same ops in
// the same order (the hook is a collective). CPU only.
//
// Evaluation mode uses running statistics, which are data: y = x ⊙ (γ s) + (β − γ s μ_run), a
// composition of primitives (exact to every order with no rule of its own).
#pragma once

#include "../tape.h"

namespace gradhpo {

/// x̂ = (x − μ) / sqrt(σ² + eps) per channel, with the batch statistics of x [N, C, ...]
/// (m = N·H·W ≥ 2 values per channel). When given, *batch_mean receives μ [C] and
/// *batch_var the UNBIASED variance σ²·m/(m − 1) [C] — what PyTorch folds into running_var
/// (the normalization itself uses the biased σ²).
Var batch_standardize(const Var& x, double eps, Tensor* batch_mean = nullptr, Tensor* batch_var = nullptr);

/// Training-mode batch norm: γ ⊙ batch_standardize(x) + β, γ and β of shape [C].
/// batch_mean / batch_var as in batch_standardize (the variance is unbiased). Running
/// statistics are updated by the caller (they are state outside w):
///   running = (1 − momentum) running + momentum batch.
Var batch_norm_train(const Var& x, const Var& gamma, const Var& beta, double eps, Tensor* batch_mean = nullptr,
                     Tensor* batch_var = nullptr);

/// relu(batch_norm_train(x, γ, β)) as one primitive, with the composition's bits in every mode
/// (value, gradient, tangents, forward-over-reverse) and relu's mask taken inside batch norm's
/// passes: its value is written once, its gradient reads ḡ in two passes with no relu adjoint
/// in between. The pre-activation block of a ResNet/WRN.
Var batch_norm_relu_train(const Var& x, const Var& gamma, const Var& beta, double eps, Tensor* batch_mean = nullptr,
                          Tensor* batch_var = nullptr);

/// Evaluation-mode batch norm with running statistics [C] (constants: no adjoint, no tangent).
Var batch_norm_eval(const Var& x, const Var& gamma, const Var& beta, const Tensor& running_mean,
                    const Tensor& running_var, double eps);

}  // namespace gradhpo
