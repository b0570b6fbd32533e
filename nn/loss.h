// Losses and regularizers, as functions of Vars so that a hyperparameter can be a tape leaf.
//
// Loss-defining hyperparameters (DESIGN.md): per-example weights (data hyper-cleaning) and L2
// coefficients — global, per layer (one per named tensor or per group of tensors) or per
// parameter. Each enters L_train(w, λ) here; `mixed_vjp` then gives ∂_λ(v·∇_w L) exactly.
//
// Convention: l2 terms are ½ Σ λ w², so that l2_penalty(w, μ) adds μ w to the gradient — the
// same μ as the weight decay of PyTorch's SGD (optim.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../engine/ops/softmax.h"
#include "../engine/tape.h"
#include "layout.h"

namespace gradhpo::nn {

/// The engine's cross-entropy losses (engine/ops/softmax.h), here as well so that nn code and
/// its users find every loss in one place: cross_entropy(logits [B, C], labels int32 [B]) is the
/// batch mean of −log softmax(logits)_{i, y_i}, cross_entropy_per_example the [B] terms.
using gradhpo::cross_entropy;
using gradhpo::cross_entropy_per_example;
/// (1/B) Σ_i weights_i ℓ_i with weights [B] a Var (e.g. σ(λ_i) of per-example λ). The
/// normalization is by B, not by Σ weights, so that a weight of 0 removes an example's term.
Var weighted_cross_entropy(const Var& logits, const Tensor& labels, const Var& weights);

/// ½ Σ_i λ_i w_i²: λ has one element (global coefficient) or as many as w (per parameter).
Var l2_penalty(const Var& w, const Var& lam);
/// ½ λ ‖w‖² with a constant λ.
Var l2_penalty(const Var& w, double lam);
/// ½ Σ_g λ_g Σ_{k: group[k] = g} ‖w_k‖²  over the layout's tensors w_k: λ [G] with G groups,
/// `group[k]` in [0, G) or −1 (tensor k unregularized), one entry per tensor of the layout.
Var l2_penalty_grouped(const ParamLayout& layout, const Var& w, const Var& lam, const std::vector<int>& group);
/// One λ per named tensor: λ [layout.size()].
Var l2_penalty_per_tensor(const ParamLayout& layout, const Var& w, const Var& lam);

/// Groups that put all tensors of one layer together: "conv1.weight" and "conv1.bias" share
/// the group of "conv1" (the name up to its last '.'). Groups are numbered in layout order;
/// `names`, when given, receives each group's name.
std::vector<int> layer_groups(const ParamLayout& layout, std::vector<std::string>* names = nullptr);
/// Groups that regularize only weight tensors (role weight), one group per such tensor,
/// biases and batch-norm parameters −1.
std::vector<int> weight_groups(const ParamLayout& layout, std::vector<std::string>* names = nullptr);

/// Number of rows of logits [B, C] whose arg-max equals the label (ties: the first maximum).
std::int64_t count_correct(const Tensor& logits, const std::vector<std::int32_t>& labels);
std::int64_t count_correct(const Tensor& logits, const Tensor& labels);

}  // namespace gradhpo::nn
