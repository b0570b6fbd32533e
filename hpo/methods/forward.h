// Forward-mode differentiation through training (Franceschi et al. 2017, "forward-mode
// hypergradient"; Micaelli & Storkey, Eq. 4–7 and Appendix A, with hyperparameter sharing).
//
// Carry the tangents of the optimizer state with respect to all N raw hyperparameters,
//     Z_t = dw_t/dθ,  C_t = dv_t/dθ  (and Adam's dm_t/dθ),  [N, P] each, Z_0 = C_0 = 0,
// through every step:
//     ġ_t  = H_t Z_t + ∂²L_train/∂w∂θ                     (one K-direction forward-over-reverse
//                                                         pass of the loss tape, K = N columns)
//     (Z_{t+1}, C_{t+1}) = ∂Φ/∂(w, v) (Z_t, C_t) + ∂Φ/∂g ġ_t + ∂Φ/∂θ   (step tape, JVP)
// For SGD with momentum this is Eq. 7 exactly: with Φ's PyTorch form v' = β v + g + μ w,
// w' = w − α v', the step tape's JVP gives C' = β C + (H + μ) Z + δ(v, w, ...) and
// Z' = Z − α C' − δ(v'), which are Appendix A's A Z + B and C for α, β and μ at once.
// At the end  dL_val/dθ = ∂_θ L_val + Z_T ∇_w L_val.  Memory is constant in T.
//
// All N columns go through the engine as ONE K-direction pass per step (stacked tangents:
// one GEMM per layer whatever K is) — Micaelli & Storkey's implementation loops over columns.
// `single_direction_passes` does that loop instead, as the benchmark's baseline.
#pragma once

#include <memory>

#include "../method.h"
#include "../shard.h"

namespace gradhpo::hpo {

struct ForwardOptions {
  /// Clip each entry of the Hessian–matrix product ġ_t to ±c (0: off; Appendix B uses 10).
  double clip_hessian_product = 0;
  /// Clip each hypergradient to ±c (0: off).
  double clip_hypergradient = 0;
  /// Skip the H·Z term on every other step (Section 4: truncation, after Shaban et al. 2019).
  bool truncate_alternate = false;
  /// K single-direction passes per step instead of one K-direction pass (same numbers).
  bool single_direction_passes = false;
};

/// Registry entry "forward": clip-hessian, clip-hypergradient, truncate-alternate, single-direction.
const OptionSpecs& forward_option_specs();

/// Forward mode over blocks of θ's columns, one block per process (hpo/mpi/forward_columns.h
/// supplies one over MPI ranks, through BilevelProblem::column_blocks): each process replays the
/// same inner run with its block of the columns of Z — K/N directions per pass — and the
/// blocks' hypergradient entries are gathered once at the end. A column's numbers do not depend
/// on the others, so the assembled hypergradient is the single-process one (bit for bit where
/// the products' order of additions does not depend on K).
class ColumnBlocks {
 public:
  virtual ~ColumnBlocks() = default;
  /// This process's block of the N columns.
  virtual Shard block(std::int64_t N) const = 0;
  /// Fills every entry of `d_theta` [N] outside this process's block from the process that
  /// computed it; the same values on every process afterwards.
  virtual void gather(Tensor& d_theta) const = 0;
};

/// Forward mode over a segment (in a segment the start state is held fixed, Z = C = 0 there),
/// registered as "forward". Every hyperparameter group, SGD and Adam. When the problem carries
/// column blocks (BilevelProblem::column_blocks, a run-time choice: the registry has one
/// "forward"), this process carries only its block of the columns.
class ForwardMethod final : public Method {
 public:
  explicit ForwardMethod(const Options& options);
  const ForwardOptions& settings() const { return o_; }
  Estimate estimate(const BilevelProblem& problem) const override;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;
  void check_problem(const BilevelProblem& problem) const override;

 private:
  ForwardOptions o_;
  std::shared_ptr<const ColumnBlocks> blocks_;  // null: every column here
};

}  // namespace gradhpo::hpo
