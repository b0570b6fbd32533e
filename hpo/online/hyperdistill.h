// HyperDistill (Lee, Nam, Yang & Hwang 2022, "Online Hyperparameter Meta-Learning with
// Hypergradient Distillation", ICLR; Section 3, Algorithm 1; GradHpO slides).
//
// The online hypergradient of step t is  g^FO + g^SO:  g^FO = ∂_λ L_val(w_{t+1}) is cheap, and the
// second-order part of a γ-discounted horizon,
//     g^SO_t = Σ_{s ≤ t} γ^{t−s} v_t · ∂Φ_s/∂λ      (v_t = ∇_w L_val(w_{t+1}); the Jacobian
//                                                    products between s and t distilled away),
// is distilled into ONE Jacobian product at a single averaged point:
//     g^SO_t ≈ π_t · f(w*_t, D_t),   f(w, D) = v_t · ∂Φ(w, λ; D)/∂λ,
//     w*_t = p_t w*_{t−1} + (1 − p_t) w_{t−1},   p_t = γ (1 − γ^{t−1}) / (1 − γ^t)
// (so w*_t = Σ_{s<t} γ^{t−1−s} w_s / Σ_{s<t} γ^{t−1−s}, the γ-weighted average of past weights),
//     π_t = c_γ(t; θ) = θ · (1 − γ^t) / (1 − γ)     (θ = 1: the sum of the weights γ^{t−s}),
// and θ is fitted every `fit_every` steps by least squares of π_t f_t against a DrMAD-style
// backward estimate of the second-order term over the last `fit_every` steps (drmad.h).
// The optimizer's other slots at w*_t are the current ones. One extra gradient, one step VJP and
// one forward-over-reverse pass per step; constant memory.
#pragma once

#include "online.h"

namespace gradhpo::hpo {

struct HyperDistillOptions {
  double gamma = 0.9;            ///< decay of the distilled horizon, in [0, 1)
  std::int64_t fit_every = 20;   ///< steps between fits of θ (0: never; θ stays 1)
};

/// p_t of the EMA recursion for t >= 1 (p_1 = 0: w*_1 = w_0).
double ema_coefficient(double gamma, std::int64_t t);
/// c_γ(t; θ) = θ (1 − γ^t) / (1 − γ).
double distill_scale(double gamma, std::int64_t t, double theta);
/// The least-squares θ of y ≈ θ x over pairs of vectors: Σ x·y / Σ x·x.
double fit_distillation_scale(const std::vector<Tensor>& x, const std::vector<Tensor>& y);

class HyperDistill final : public OnlineMethod {
 public:
  HyperDistill(const BilevelProblem& problem, OuterOptions outer, HyperDistillOptions options = {});
  std::string name() const override { return "hyperdistill"; }

 protected:
  Tensor step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                            const InnerState& after, double& val_loss) override;
  /// w*_t; with fitting, the window's starting state and DrMAD's three states (drmad.h).
  std::pair<std::size_t, std::string> extra_buffers() const override;

 private:
  HyperDistillOptions options_;
};

}  // namespace gradhpo::hpo
