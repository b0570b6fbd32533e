#include "backward.h"

#include "../tensor_math.h"

namespace gradhpo::hpo::detail {

Adjoint start_backward(Unroll& u, const InnerState& final_state) {
  const Unroll::ValPass val = u.validation(final_state.w());
  Adjoint a;
  a.val_loss = val.loss;
  a.direct = val.grad_theta.clone();
  a.state.parts.push_back(val.grad_w);
  for (std::size_t i = 1; i < final_state.parts.size(); ++i)
    a.state.parts.push_back(
        Tensor::zeros(final_state.parts[i].shape(), final_state.parts[i].dtype(), final_state.parts[i].device()));
  a.theta = val.grad_theta.clone();
  return a;
}

// Reverse mode's two lines per step (reverse.h), in Algorithm 2's numbering for SGD.
void backward_step(Unroll& u, const InnerState& s, const Tensor& g, std::int64_t t, Adjoint& a) {
  // (S̄_t, ḡ_t, θ̄_Φ) = ∂Φ_t/∂(S, g, θ)^T S̄_{t+1}: Algorithm 2 lines 5, 9, 10, 13 for SGD.
  StepVjp b = u.step_vjp(s, g, t, a.state);
  // g_t = ∇_w L(w_t, θ): w̄_t += H ḡ_t (line 11), θ̄ += ∂_θ(ḡ_t·∇_w L) (line 12).
  const LossPass hv = u.loss_pass(s.w(), t, b.adj_g, Tensor(), /*theta_adjoint=*/true, /*want_grad=*/false);
  accumulate_step(std::move(b), hv, a);
}

void accumulate_step(StepVjp&& b, const LossPass& hv, Adjoint& a) {
  a.state = std::move(b.adj_state);
  axpy(a.state.parts[0], 1.0, hv.grad_tangent);
  if (a.theta.numel() > 0) {
    axpy(a.theta, 1.0, b.adj_theta);
    axpy(a.theta, 1.0, hv.theta_tangent);
  }
}

}  // namespace gradhpo::hpo::detail
