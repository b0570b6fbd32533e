// HOAG: hyperparameter optimization with approximate gradient (Pedregosa 2016, ICML,
// "Hyperparameter optimization with approximate gradient", Algorithm 1; tolerance sequences and
// step-size heuristic of Section 4, as in the author's reference implementation fabianp/hoag).
//
// A full outer method on a deterministic inner problem h (inner_objective.h; the training loss
// of a full-batch problem, or a fixed set of steps' batches, plus the optimizer's fixed weight
// decay). For k = 1, 2, ...:
//   (i)   inner solve: L-BFGS (libLBFGS, Nocedal 1980 / Liu & Nocedal 1989), warm-started from
//         the previous weights, until ‖∇_w h(w_k, λ_k)‖ ≤ ε_k ‖∇_w h(w_1⁰, λ_1)‖
//   (ii)  linear system: CG on ∇²_w h(w_k) q = ∇_w L_val(w_k), warm-started from q_{k−1}, until
//         ‖H q_k − ∇_w L_val‖ ≤ ε_k ‖∇_w L_val(w_1)‖                       (implicit.h, cg_solve)
//   (iii) approximate hypergradient p_k = ∂_λ L_val − ∂_λ(q_k · ∇_w h)    (direct + indirect)
//   (iv)  θ_{k+1} = P_D(θ_k − p_k / L_k)    (P_D: the box [theta_min, theta_max])
// The tolerances are relative to the first iteration's norms, as in the reference
// implementation, so ε is scale free (for CG the reference hands ε‖∇_w L_val(w_1)‖ to scipy,
// whose tolerance is relative to ‖b‖ once more; we keep the one scale). ε_k decreases by one of Section 4's sequences:
//   exponential  ε_k = ε₀ ρ^k    quadratic  ε_k = ε₀ / k²    cubic  ε_k = ε₀ / k³
// (summable, as Theorem 2's convergence needs), floored at `tolerance_floor`.
//
// The step 1/L_k adapts by a sufficient-decrease test on the validation loss g_k = L_val(w_k)
// with the inexactness slack of ε (the paper's heuristic, in the reference implementation's form):
//     g_k − ε_k ≤ g_{k−1} + ε_{k−1} + ε_{k−1}‖Δ‖ − (L/2)‖Δ‖²,   Δ = θ_k − θ_{k−1}
// holds: L ← 0.95 L (the step grows); else if g_k > g_{k−1}: L ← 2 L (the step shrinks); else
// L is kept. Δ is the step that led to θ_k (the reference code measures the step it is about to
// take; the test is about the one that was taken). L₁ = ‖p_1‖·N when ‖p_1‖ > 10⁻³, else 1 (the
// reference's start), unless initial_step gives 1/L₁.
//
// Hyperparameters are moved in raw θ: give the groups Transform::exp (the L2 groups' default) to
// work in log space, as the paper does. Only loss-defining groups (require_loss_defining).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../methods/implicit.h"
#include "../trial.h"

namespace gradhpo::hpo {

struct HoagIteration;

enum class ToleranceDecrease : std::uint8_t { exponential, quadratic, cubic };
const char* decrease_name(ToleranceDecrease d);
/// "exponential", "quadratic", "cubic"; throws Error otherwise.
ToleranceDecrease parse_decrease(const std::string& name);

struct HoagOptions {
  int max_iterations = 30;                 ///< outer iterations k = 1..max_iterations
  ToleranceDecrease decrease = ToleranceDecrease::exponential;
  double tolerance_init = 0.01;            ///< ε₀ (the reference implementation's default)
  double exponential_rate = 0.9;           ///< ρ
  double tolerance_floor = 1e-12;
  int max_inner_iterations = 1000;         ///< L-BFGS iterations per outer iteration
  int lbfgs_memory = 10;                   ///< L-BFGS corrections kept (m)
  int max_cg_iterations = 1000;
  double initial_step = 0;                 ///< 1/L₁ (0: the reference's rule above)
  double theta_min = -std::numeric_limits<double>::infinity();  ///< the box D of the projection
  double theta_max = std::numeric_limits<double>::infinity();
  InnerBatches batches;                    ///< the deterministic training loss h averages
  /// Passes over the losses (gradients + forward-over-reverse) in all, never exceeded; 0: no
  /// limit. L-BFGS stops while a worst-case line search still fits, CG takes what is left; an
  /// iteration that cannot reach its hypergradient within it is not recorded.
  std::int64_t max_passes = 0;
  /// Called after every iteration (progress, budgets); return false to stop there.
  std::function<bool(const HoagIteration&)> on_iteration;
  /// Throws Error naming the field (max_iterations < 1 is a budget of zero).
  void validate() const;
};

/// ε_k of the schedule, k >= 1.
double hoag_tolerance(const HoagOptions& options, int k);

/// One row per outer iteration.
struct HoagIteration {
  int k = 0;                      ///< 1-based
  Tensor theta;                   ///< θ_k, where the hypergradient was taken [N]
  double val_loss = 0;            ///< g_k = L_val(w_k)
  double train_loss = 0;          ///< h(w_k)
  Tensor hypergradient;           ///< p_k [N]
  double epsilon = 0;             ///< ε_k
  double step_size = 0;           ///< 1/L_k, the step taken from θ_k
  std::string step_change;        ///< what the sufficient-decrease test did to L before this step
  int inner_iterations = 0;       ///< L-BFGS iterations
  double inner_grad_norm = 0;     ///< ‖∇_w h(w_k)‖ reached
  std::string inner_status;       ///< why L-BFGS stopped
  int cg_iterations = 0;
  double cg_residual = 0;         ///< ‖H q_k − ∇_w L_val‖
  Cost cost;                      ///< this iteration's passes and time
};

struct HoagRun {
  std::vector<HoagIteration> iterations;
  Tensor theta;                   ///< θ after the last update
  Tensor w;                       ///< the inner solution at the last iteration's θ
  std::string stop_reason;
  /// Set when an iteration diverged (its training loss or hypergradient not finite, or above the
  /// problem's bound): the run stopped there, at θ = `theta`; the iterations before it are kept.
  std::optional<FailedTrial> failure;
  double seconds = 0;
  /// One line per iteration: k, θ (first entries), L_val, ‖p‖, ε, step, inner and CG iterations.
  std::string table(const Hyperparameters& hyper) const;
};

/// Runs HOAG from θ₀ (undefined: the groups' initial values) and the problem's w₀.
HoagRun run_hoag(const BilevelProblem& problem, const HoagOptions& options = {}, const Tensor& theta0 = Tensor());

}  // namespace gradhpo::hpo
