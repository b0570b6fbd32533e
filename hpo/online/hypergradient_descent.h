// Online hypergradient descent (Baydin, Cornish, Martínez Rubio, Schmidt & Wood 2018, "Online
// Learning Rate Adaptation with Hypergradient Descent", Section 2, Algorithms 1–3).
//
// The learning rate is updated before every step from the derivative of the *training* loss at
// the new point with respect to the rate used by the previous step:
//     h_t = ∂f(w_t)/∂α_{t−1} = ∇f(w_t) · u_{t−1},   u_{t−1} = ∂w_t/∂α_{t−1}  (the last step alone)
//     α_t = α_{t−1} − β h_t,   then   w_{t+1} = Φ(w_t, α_t, ∇f(w_t)).
// For plain SGD u_{t−1} = −∇f(w_{t−1}), which gives the paper's α_t = α_{t−1} + β ∇f(w_t)·∇f(w_{t−1});
// for SGD with momentum u = −v_t (SGDN-HD), for Adam u = −m̂_t/(√v̂_t + ε) (Adam-HD). Here u comes
// from the step tape (a JVP of Φ in θ), so all three — and any optimizer written for Var — share
// one code path. The original lets α go negative; `safe` learns θ = log α instead (α = e^θ > 0,
// the chain rule through the transform from the tape).
#pragma once

#include "online.h"

namespace gradhpo::hpo {

/// The group this method learns: one global learning rate, identity (the paper) or exp (safe).
HyperGroup hypergradient_descent_group(double initial_lr, bool safe);

class HypergradientDescent final : public OnlineMethod {
 public:
  /// The problem must learn exactly one global learning rate (hypergradient_descent_group); β is
  /// the outer step (OuterOptions::step, with kind sgd).
  HypergradientDescent(const BilevelProblem& problem, OuterOptions outer);
  std::string name() const override { return "hypergradient-descent"; }
  OnlineStep step(BilevelState& state) override;

 protected:
  Tensor step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                            const InnerState& after, double& val_loss) override;
  std::pair<std::size_t, std::string> extra_buffers() const override {
    return {static_cast<std::size_t>(problem_->num_params()) * dtype_size(problem_->dtype()), "the direction dw/dlr (P numbers)"};
  }
};

}  // namespace gradhpo::hpo
