// Reverse-mode differentiation through training (Maclaurin, Duvenaud & Adams 2015; Algorithm 2
// of the CS 6787 report, here for PyTorch's form of the update and for any optimizer whose step
// is written once for Var).
//
// Forward: S_{t+1} = Φ(S_t, g_t, λ_t),  g_t = ∇_w L_train(w_t, λ).  Backward, from
//     S̄_T = (∂L_val/∂w_T, 0, ...),   θ̄ = ∂_θ L_val               (the direct term)
// for t = T−1 … 0:
//     (S̄_t, ḡ_t, θ̄_Φ) = ∂Φ_t/∂(S, g, θ)^T · S̄_{t+1}                (step tape, VJP)
//     w̄_t += H_t ḡ_t,   θ̄ += θ̄_Φ + ∂_θ(ḡ_t · ∇_w L_train)           (one forward-over-reverse pass)
// which gives dL_val/dθ = θ̄ and dL_val/dw_0 = w̄_0 exactly. Lines 5–12 of Algorithm 2 are the
// special case Φ = SGD with momentum; the step tape produces them from the formula.
//
// The backward pass needs S_t and g_t for every t in reverse order. Three policies, one number:
//   store_all       keep g_t for every step and S_t every ⌈√T⌉ steps; the backward sweep replays
//                   S_t by the optimizer step alone (memory T·P + 2√T·|S|, one extra step each)
//   exact_reversal  SGD with momentum only: train in fixed point with an information buffer
//                   (exact_rep.h) and run the update backwards, bit for bit (memory O(P) plus
//                   ≈ log2(1/β) bits per parameter per step). Recovering v_t needs g_t at the
//                   recovered w_t: it comes out of the step's forward-over-reverse pass itself
//                   (the pass returns the plain gradient's bits), so the cost is store-all's
//   checkpoint      keep S_t every c = ⌈√T⌉ steps and replay one segment at a time (memory
//                   O(√T·P), one extra forward pass), for any optimizer
//
// A memory budget (option memory-budget: bytes, "fastest" or "least-memory") adds stored passes:
// the gradient pass of step t records L_train on a tape that is kept (activations and the ops'
// saved values, Unroll::keep_pass) until the backward sweep's forward-over-reverse pass at the
// same w_t, which then runs only its tangent and adjoint sweeps — no primal recomputation. As
// many steps keep their pass as the budget leaves room for; the rest recompute it, with the same
// bits (same ops on the same values). With policy=auto the budget also picks the policy: the
// fastest plan that fits (store-all, exact reversal or checkpointing, each with as many stored
// passes as fit, ranked by the primal passes they recompute plus their own overhead, measured),
// or the least memory (exact reversal where it applies, else checkpointing). The plan is in
// the result's notes. The budget bounds what the plan holds — the policy's buffers and the
// stored passes, each counted with its mini-batch and (store-all, exact reversal) its own w_t —
// not the working set every plan shares: one pass being recorded and swept, and the
// validation pass (bench/hypergradient_vs_pytorch.py measures it, ~50–65 MB on its MLP).
#pragma once

#include "../method.h"

namespace gradhpo::hpo {

enum class ReversePolicy : std::uint8_t { store_all, exact_reversal, checkpoint, automatic };
const char* policy_name(ReversePolicy p);
/// "store-all", "exact-reversal", "checkpoint", "auto"; throws Error otherwise.
ReversePolicy parse_policy(const std::string& name);

struct ReverseOptions {
  ReversePolicy policy = ReversePolicy::store_all;
  std::int64_t checkpoint_every = 0;  ///< checkpoint: steps per segment (0: ⌈√T⌉)
  int radix_bits = 44;                ///< exact reversal: fixed point with resolution 2^−radix_bits
  enum class Budget : std::uint8_t { none, fastest, least_memory, bytes };
  Budget budget = Budget::none;       ///< memory-budget: none, fastest, least-memory or a byte count
  std::size_t budget_bytes = 0;
};

/// "none", "fastest", "least-memory" or a byte count ("2e9", "500M", "1.5G", "64MB": decimal
/// units) into options; throws Error naming the text otherwise.
void parse_budget(const std::string& text, ReverseOptions& o);

/// Registry entry "reverse": policy, checkpoint-every, radix-bits, memory-budget.
const OptionSpecs& reverse_option_specs();

/// Reverse mode, registered as "reverse". Every hyperparameter group; store-all and checkpoint
/// for SGD and Adam, exact reversal for SGD with momentum β ≠ 0 only (refused up front
/// otherwise). d_w0 = dL_val/dw_start.
class ReverseMethod final : public Method {
 public:
  explicit ReverseMethod(const Options& options);
  const ReverseOptions& settings() const { return o_; }
  Estimate estimate(const BilevelProblem& problem) const override;
  /// The other policies, with their estimates (exact reversal only where it applies: SGD with
  /// momentum): what a run refused for memory is offered.
  std::vector<Alternative> alternatives(const BilevelProblem& problem) const override;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;
  /// Exact reversal: Adam, and momentum fixed at β = 0 (which would keep ~64 bits per parameter
  /// per step), are refused before any work.
  void check_problem(const BilevelProblem& problem) const override;

 private:
  /// Exact reversal's refusals (Adam; momentum fixed at 0).
  static void check_problem_for_exact(const BilevelProblem& problem);
  ReverseOptions o_;
};

/// Store-all reverse mode along a trajectory that was computed elsewhere (S_t and g_t for each
/// step of the segment): the reference that exact reversal is compared with "along the
/// trajectory it actually trained", and the reference implementations of DrMAD and the
/// one-step methods (register.cpp) are written with.
Hypergradient reverse_along(const BilevelProblem& problem, const Tensor& theta, const std::vector<InnerState>& states,
                            const std::vector<Tensor>& grads, const InnerState& final_state, std::int64_t first = 0);

}  // namespace gradhpo::hpo
