// Implicit hypergradients at the end of training: the implicit function theorem (IFT), with the
// inverse-Hessian product by a truncated Neumann series, by conjugate gradients, or exactly
// (a dense Hessian, for small P).
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
//            k = 0 is the identity approximation H⁻¹ ≈ αI, q = α∇_w L_val (Lorraine et al.'s
//            K = 0 term; the one-step T1–T2 approximation of Luketina et al. 2016).
//   cg       conjugate gradients (Hestenes & Stiefel 1952; Nocedal & Wright, Algorithm 5.2)
//            until ‖Hq − b‖ ≤ tolerance or max_iterations, optionally from a warm start q₀.
//            H must be symmetric positive definite; a direction of non-positive curvature stops
//            it (stop_reason says so) with the iterate reached.
//   exact    the dense H from P HVPs (its columns H e_i), then the minimum-norm least-squares
//            solution q = H⁺ b (a complete orthogonal decomposition), which is H⁻¹b where H is
//            invertible and the pseudo-inverse's answer where it is singular. P HVPs and P² numbers:
//            for small problems (P ≤ 4096) and as the others' yardstick.
//
// Both operate on any symmetric LinearOperator, so the tests check them against dense algebra.
//
// Only loss-defining hyperparameters: an optimizer-defining group (learning rate, momentum,
// weight decay) does not move the optimum of the training loss, and is refused by name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "../method.h"
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

/// q = α Σ_{j=0}^{k} (I − αH)^j b (Lorraine et al. 2020, Algorithm 3): k = `terms` products
/// (k = 0: q = α b, no product).
LinearSolve neumann_solve(const LinearOperator& H, const Tensor& b, double alpha, int terms);

/// The largest P the exact solve takes (a dense P × P Hessian: 128 MiB at 4096).
constexpr std::int64_t kExactSolveMaxParams = 4096;
/// q = H⁺ b, the minimum-norm least-squares solution, with the dense H built from its P columns
/// H e_i (P products). Throws Error for P > kExactSolveMaxParams, naming P and the other solvers.
LinearSolve exact_solve(const LinearOperator& H, const Tensor& b);

struct CgOptions {
  double tolerance = 1e-10;  ///< stop when ‖b − Hq‖ ≤ tolerance (absolute); 0: run max_iterations
  int max_iterations = 100;
};
/// Conjugate gradients for H q = b from q₀ (undefined: zero; a warm start costs one extra product).
LinearSolve cg_solve(const LinearOperator& H, const Tensor& b, const CgOptions& options, const Tensor& q0 = Tensor());

enum class ImplicitSolver : std::uint8_t { neumann, cg, exact };
/// "Neumann", "CG", "exact".
const char* solver_name(ImplicitSolver s);
/// The registry's spelling: "neumann", "cg", "exact"; throws Error otherwise.
ImplicitSolver parse_solver(const std::string& name);

struct ImplicitOptions {
  ImplicitSolver solver = ImplicitSolver::cg;
  /// Neumann: k (the sum has k + 1 terms, j = 0..k; k HVPs; 0 allowed). CG: the most
  /// iterations (≥ 1). Exact: unused.
  int iterations = 50;
  double neumann_alpha = 0.1;  ///< α of the series (needs 0 < α < 2/λ_max(H))
  /// CG stops at ‖H q − ∇_w L_val‖ ≤ cg_tolerance · r (relative; 0: run all iterations), where
  /// r = cg_reference_norm, or ‖∇_w L_val‖ at w when that is 0.
  double cg_tolerance = 1e-10;
  double cg_reference_norm = 0;
  Tensor warm_start;           ///< CG's q₀ [P] (undefined: zero), e.g. the previous outer step's q
  InnerBatches hessian_batches;  ///< which training losses h averages (default: the last step's batch)
  /// Throws Error naming the field (CG with iterations < 1 or Neumann with iterations < 0: "a
  /// budget of zero"; α or tolerance not finite).
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

/// Registry entry "ift": solver, iterations, neumann-alpha, cg-tolerance.
const OptionSpecs& ift_option_specs();

/// The IFT after training, registered as "ift": trains over the segment (default: the whole run
/// from S_0, as the problem says) and applies implicit_at at the weights it ends with, the
/// Hessian on the segment's last batch. The cost includes the training run. Loss-defining groups
/// only (Support::loss_defining_only()).
///
/// Several solvers on ONE trained state: train once (run_inner), then call at(problem, θ, w_T)
/// on one ImplicitMethod per solver — or implicit_at on an Unroll of your own.
class ImplicitMethod final : public Method {
 public:
  explicit ImplicitMethod(const Options& options);
  /// From the struct, for what the registry's options do not carry (the Hessian's batches, a
  /// warm start, CG's reference norm). Validates it.
  explicit ImplicitMethod(const ImplicitOptions& options);
  const ImplicitOptions& settings() const { return o_; }
  Estimate estimate(const BilevelProblem& problem) const override;

  /// The IFT hypergradient at given weights w (no training), with this method's solver; the
  /// Hessian on the last step's batch unless the settings name steps.
  ImplicitResult at(const BilevelProblem& problem, const Tensor& theta, const Tensor& w) const;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;
  /// The exact solver refuses P > kExactSolveMaxParams before training.
  void check_problem(const BilevelProblem& problem) const override;

 private:
  ImplicitOptions o_;
};

}  // namespace gradhpo::hpo
