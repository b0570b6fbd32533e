// The backward pass of reverse mode, one step at a time (reverse.h has the derivation): shared
// by reverse mode's three policies, DrMAD's approximate trajectory and the one-step methods.
#pragma once

#include "../hypergradient.h"

namespace gradhpo::hpo::detail {

/// The adjoint state of the backward pass: S̄_{t+1} going in, S̄_t coming out, and θ̄; with the
/// validation loss and the direct term ∂_θ L_val that started it.
struct Adjoint {
  InnerState state;
  Tensor theta;
  double val_loss = 0;
  Tensor direct;
};

/// Starts the backward pass at the end of training: S̄_T = (∂L_val/∂w_T, 0, ...), θ̄ = ∂_θ L_val
/// (the direct term, also kept in `direct`, with `val_loss`).
Adjoint start_backward(Unroll& u, const InnerState& final_state);

/// One step back: (S̄_t, ḡ_t, θ̄_Φ) = ∂Φ_t/∂(S, g, θ)^T S̄_{t+1} from the step tape, then
/// w̄_t += H_t ḡ_t and θ̄ += θ̄_Φ + ∂_θ(ḡ_t·∇_w L_train) from one forward-over-reverse pass.
void backward_step(Unroll& u, const InnerState& s, const Tensor& g, std::int64_t t, Adjoint& a);

/// backward_step's second half, for callers that made the two products themselves: S̄_t =
/// b.adj_state + (H ḡ_t, 0, ...), θ̄ += b.adj_theta + ∂_θ(ḡ_t·∇_w L) with `hv` the
/// forward-over-reverse pass along b.adj_g.
void accumulate_step(StepVjp&& b, const LossPass& hv, Adjoint& a);

}  // namespace gradhpo::hpo::detail
