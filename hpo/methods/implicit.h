// Implicit hypergradients at the end of training: the implicit function theorem (IFT), with the
// inverse-Hessian product by a truncated Neumann series or by conjugate gradients.
//
// Lorraine, Vicol & Duvenaud 2020, "Optimizing Millions of Hyperparameters by Implicit
// Differentiation" (AISTATS): Theorem 1 (the IFT), the Neumann approximation of Section 3,
// Algorithm 2 (the hypergradient) and Algorithm 3 (the approximate inverse-Hessian-vector
// product); Pedregosa 2016 (ICML), Algorithm 1 steps (ii)-(iii), for the CG form (hoag.h).
// At a stationary point ∇_w h(w*, λ) = 0 of
// the inner objective h (inner_objective.h), the IFT gives dw*/dλ = −H⁻¹ ∂²h/∂w∂λ with
// H = ∇²_w h, so
//
//     dL_val/dλ = ∂_λ L_val + ∂_w L_val · dw*/dλ = ∂_λ L_val − ∂_λ(q · ∇_w h),   H q = ∇_w L_val
//                 (direct)    (indirect)
//
// evaluated at the weights w_T that training reached (exact only where w_T = w*; the error goes
// with the distance from the optimum, see tests/hpo/test_implicit.cpp).
//
// The solve H q = ∇_w L_val (the "inverse-HVP" v H⁻¹ of Lorraine et al.):
//   neumann  q = α Σ_{j=0}^{k} (I − αH)^j ∇_w L_val: Algorithm 3 — the recursion
//            v ← v − αHv, p ← p + v over j = 1..k from v = p = ∇_w L_val, then q = α p. α scales
//            the sum once; it is not compounded per term. k HVPs. The series converges to H⁻¹b
//            iff 0 < α < 2/λ_max(H) (and H is positive definite); k bounds the work, not the error.
//   cg       conjugate gradients (Hestenes & Stiefel 1952; Nocedal & Wright, Algorithm 5.2)
//            until ‖Hq − b‖ ≤ tolerance or max_iterations, optionally from a warm start q₀.
//            H must be symmetric positive definite; a direction of non-positive curvature stops
//            it (stop_reason says so) with the iterate reached.
//
// Both operate on any symmetric LinearOperator, so the tests check them against dense algebra.
//
// Only loss-defining hyperparameters: an optimizer-defining group (learning rate, momentum,
// weight decay) does not move the optimum of the training loss, and is refused by name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "../hypergradient.h"
#include "../inner_objective.h"

namespace gradhpo::hpo {

/// x ↦ H x on float64 vectors [P] (symmetric H).
using LinearOperator = std::function<Tensor(const Tensor& x)>;

struct LinearSolve {
  Tensor q;                     ///< the approximate solution of H q = b [P], float64
  int operator_calls = 0;       ///< H·x products made (HVPs when H is a Hessian)
  int iterations = 0;           ///< Neumann: k; CG: iterations taken
  double residual = -1;         ///< CG: ‖b − Hq‖ by its recurrence; Neumann: not computed (−1)
  bool converged = false;       ///< CG: reached the tolerance; Neumann: ran its k terms
  std::string stop_reason;
};

/// q = α Σ_{j=0}^{k} (I − αH)^j b (Lorraine et al. 2020, Algorithm 3): k = `terms` products.
LinearSolve neumann_solve(const LinearOperator& H, const Tensor& b, double alpha, int terms);

struct CgOptions {
  double tolerance = 1e-10;  ///< stop when ‖b − Hq‖ ≤ tolerance (absolute); 0: run max_iterations
  int max_iterations = 100;
};
/// Conjugate gradients for H q = b from q₀ (undefined: zero; a warm start costs one extra product).
LinearSolve cg_solve(const LinearOperator& H, const Tensor& b, const CgOptions& options, const Tensor& q0 = Tensor());

enum class ImplicitSolver : std::uint8_t { neumann, cg };
const char* solver_name(ImplicitSolver s);

struct ImplicitOptions {
  ImplicitSolver solver = ImplicitSolver::cg;
  /// Neumann: k (the sum has k + 1 terms, j = 0..k; k HVPs). CG: the most iterations.
  int iterations = 50;
  double neumann_alpha = 0.1;  ///< α of the series (needs 0 < α < 2/λ_max(H))
  /// CG stops at ‖H q − ∇_w L_val‖ ≤ cg_tolerance · r (relative; 0: run all iterations), where
  /// r = cg_reference_norm, or ‖∇_w L_val‖ at w when that is 0.
  double cg_tolerance = 1e-10;
  double cg_reference_norm = 0;
  Tensor warm_start;           ///< CG's q₀ [P] (undefined: zero), e.g. the previous outer step's q
  InnerBatches hessian_batches;  ///< which training losses h averages (default: the last step's batch)
  /// Throws Error naming the field (iterations < 1: "a budget of zero"; α or tolerance not finite).
  void validate() const;
};

/// What one IFT evaluation at given weights returns: the hypergradient and the solve behind it.
struct ImplicitResult {
  Hypergradient hypergradient;
  LinearSolve solve;
  double residual = 0;  ///< ‖H q − ∇_w L_val‖, from the final pass (which gives H q with the mixed product)
  double rhs_norm = 0;  ///< ‖∇_w L_val‖
};

/// The IFT hypergradient at weights w (no training): HOAG's steps (ii)-(iii). `unroll` holds θ;
/// its pass counts grow by the solve's HVPs, the validation pass and the final mixed product.
ImplicitResult implicit_at(Unroll& unroll, const Tensor& w, const ImplicitOptions& options,
                           const std::string& method = "IFT");

/// Trains over `segment` (default: the whole run from S_0, as the problem says) and applies the
/// IFT at the weights it ends with. The cost includes the training run.
Hypergradient ift_hypergradient(const BilevelProblem& problem, const Tensor& theta, const ImplicitOptions& options = {},
                                const Segment* segment = nullptr);

}  // namespace gradhpo::hpo
