// T1–T2 (Luketina, Berglund, Greff & Raiko 2016, "Scalable Gradient-Based Tuning of Continuous
// Regularization Hyperparameters", Section 2, Eq. 3–4; HippoTrainer and GradHpO slides).
//
// After each inner step w_{t+1} = Φ(w_t, λ, ∇_w L_train(w_t, λ)), move λ along the hypergradient
// of the validation loss through that one step:
//     λ ← λ − η₂ dL_val(w_{t+1}(λ))/dλ,
//     dL_val(w_{t+1})/dλ = ∂_λ L_val + ∂Φ_t/∂λ^T v + ∂_λ(ḡ · ∇_w L_train(w_t)),
//     v = ∇_w L_val(w_{t+1}),  ḡ = ∂Φ_t/∂g^T v  (= −η₁ v for plain SGD: the slides' η₂ η₁ v·∇_λ∇_w C₁).
// The mixed product is exact (one forward-over-reverse pass). With `darts_radius` > 0 it is the
// DARTS form instead (Liu, Simonyan & Yang 2019, Eq. 8; GradHpO slides):
//     [∇_λ L_train(w⁺) − ∇_λ L_train(w⁻)] / 2ε,  w^± = w_t ± ε ḡ,  ε = darts_radius / ‖ḡ‖
// — a difference in weight space, so every entry of a vector λ gets its own value.
// This is the γ → 0 end of the generalized greedy method, and the k = 0, T = 1 end of the IFT
// Neumann series (HippoTrainer slides).
#pragma once

#include "online.h"

namespace gradhpo::hpo {

struct T1T2Options {
  double darts_radius = 0;  ///< 0: the exact mixed product; DARTS uses 0.01
};

class T1T2 final : public OnlineMethod {
 public:
  /// Any hyperparameter group; the outer optimizer (η₂) defaults to SGD.
  T1T2(const BilevelProblem& problem, OuterOptions outer, T1T2Options options = {});
  std::string name() const override { return options_.darts_radius > 0 ? "online-t1t2-darts" : "online-t1t2"; }  // registry name (+ form)

 protected:
  Tensor step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                            const InnerState& after, double& val_loss) override;

 private:
  T1T2Options options_;
};

}  // namespace gradhpo::hpo
