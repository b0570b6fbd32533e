// Exact hypergradients written out with the Unroll API alone (no method, no registry): the
// reference the group and Adam tests compute with.
#pragma once

#include <vector>

#include <gradhpo/hpo/tensor_math.h>
#include <gradhpo/hpo/unroll.h>

namespace gradhpo::testing {

/// dL_val/dθ by reverse mode through the whole run, storing every state (Maclaurin et al. 2015,
/// Algorithm 2 without exact reversal; Franceschi et al. 2017, Eq. 12): S̄_T = ∂L_val/∂w_T, then
/// for t = T−1..0: (S̄_t, ḡ_t, θ̄_Φ) = ∂Φ_t/∂(S, g, θ)^T S̄_{t+1}, w̄_t += H_t ḡ_t and
/// θ̄ += θ̄_Φ + ∂_θ(ḡ_t · ∇_w L_train).
inline Tensor reverse_mode(const hpo::BilevelProblem& p, const Tensor& theta) {
  hpo::Unroll u(p, theta);
  std::vector<hpo::InnerState> states;
  std::vector<Tensor> grads;
  hpo::InnerState s = u.initial_state();
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    states.push_back(s);
    const hpo::LossPass lp = u.gradient(s.w(), t);
    grads.push_back(lp.grad);
    s = u.step(s, lp.grad, t);
  }
  const hpo::Unroll::ValPass val = u.validation(s.w());
  hpo::InnerState adj;
  adj.parts.push_back(val.grad_w.clone());
  for (int i = 1; i < u.state_parts(); ++i) adj.parts.push_back(Tensor::zeros(p.w0.shape(), p.dtype()));
  Tensor d = val.grad_theta.clone();
  for (std::int64_t t = p.horizon; t-- > 0;) {
    const auto k = static_cast<std::size_t>(t);
    hpo::StepVjp b = u.step_vjp(states[k], grads[k], t, adj);
    const hpo::LossPass hv = u.loss_pass(states[k].w(), t, b.adj_g, Tensor(), true);
    hpo::axpy(b.adj_state.parts[0], 1.0, hv.grad_tangent);
    hpo::axpy(d, 1.0, b.adj_theta);
    hpo::axpy(d, 1.0, hv.theta_tangent);
    adj = std::move(b.adj_state);
  }
  return d;
}

/// dL_val/dθ by forward mode (Franceschi et al. 2017, Eq. 5–7): Z_{t+1} = ∂Φ/∂S Z_t +
/// ∂Φ/∂g (H_t Z_t + ∂²L/∂w∂θ) + ∂Φ/∂θ, all N columns at once; then ∂_θ L_val + Z_T ∇_w L_val.
inline Tensor forward_mode(const hpo::BilevelProblem& p, const Tensor& theta) {
  hpo::Unroll u(p, theta);
  hpo::InnerState s = u.initial_state();
  std::vector<Tensor> Z(s.parts.size());
  const Tensor theta_dirs = p.hyper.has_loss_defining() ? u.theta_identity() : Tensor();
  for (std::int64_t t = 0; t < p.horizon; ++t) {
    const hpo::LossPass lp = u.loss_pass(s.w(), t, Z[0], theta_dirs, false);
    const Tensor g_dirs = Z[0].defined() || theta_dirs.defined() ? lp.grad_tangent : Tensor();
    hpo::StepJvp j = u.step_jvp(s, Z, lp.grad, g_dirs, t);
    s = std::move(j.next);
    Z = std::move(j.tangents);
  }
  const hpo::Unroll::ValPass val = u.validation(s.w());
  Tensor d = val.grad_theta.clone();
  if (Z[0].defined()) hpo::axpy(d, 1.0, hpo::columns_dot(Z[0], val.grad_w).to(d.dtype()));
  return d;
}

}  // namespace gradhpo::testing
