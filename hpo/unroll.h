// One inner step of training, and every derivative of it that a hypergradient method needs.
//
// The step  S_{t+1} = Φ(S_t, g_t, λ_t),  g_t = ∇_w L_train(w_t, λ; batch t)  is split in two
// tapes, each reused from step to step (no allocation in steady state):
//
//   the loss tape  leaves w, θ:  L_train(w, λ(θ))          → g and, in one forward-over-reverse
//                  pass, its directional derivatives  ġ = H ż + ∂_θ∇_w L · θ̇  (tangents) or
//                  the products  H u  and  ∂_θ(u · ∇_w L)  (adjoint tangents)
//   the step tape  leaves S = (w, v) or (w, m, v), g, θ:  Φ written once for Var in nn/optim.h
//                  (nn::sgd_step, nn::adam_step)          → its value, JVP and VJP
//
// So every product ∂Φ/∂(S, g, θ) comes from the tape of the optimizer formula itself: a new
// optimizer written with the same formula gets exact hypergradients with no new derivative
// code, and the transforms and sharing of θ are on the same tapes. The forward (training)
// value of Φ is the step tape in plain mode: the same ops, so the same bits, as the recorded
// step that is differentiated.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "problem.h"
#include "shard.h"

namespace gradhpo::hpo {

/// The optimizer state S_t: parts[0] = w; SGD: parts[1] = v (velocity); Adam: m, v.
struct InnerState {
  std::vector<Tensor> parts;
  const Tensor& w() const { return parts.at(0); }
  InnerState clone() const;
  std::size_t nbytes() const;
};

/// What one pass over the training loss returned.
struct LossPass {
  double loss = 0;
  Tensor grad;           ///< ∇_w L_train  [P]
  Tensor grad_tangent;   ///< w's adjoint tangent: [K, P] (or [P] for a 1-D direction)
  Tensor theta_tangent;  ///< θ's adjoint tangent ∂_θ(u·∇_w L): [N] for a 1-D direction u
};

struct StepVjp {
  InnerState adj_state;  ///< ∂Φ/∂S^T · S̄_{t+1}
  Tensor adj_g;          ///< ∂Φ/∂g^T · S̄_{t+1}  [P]
  Tensor adj_theta;      ///< ∂Φ/∂θ^T · S̄_{t+1}  [N] (undefined when θ is empty)
};

struct StepJvp {
  InnerState next;               ///< S_{t+1}
  std::vector<Tensor> tangents;  ///< dS_{t+1}: [K, P] per part (undefined: zero)
};

/// Counts of the passes a method made, for its cost report.
struct PassCounts {
  std::int64_t gradients = 0;       ///< reverse passes (L_train or L_val gradients)
  std::int64_t fwd_over_rev = 0;    ///< forward-over-reverse passes (H·v, mixed products)
  std::int64_t steps = 0;           ///< optimizer steps (plain, JVP or VJP)
};

class Unroll {
 public:
  /// Validates the problem and θ (NaN/inf hyperparameters are refused here, naming the entry).
  Unroll(const BilevelProblem& problem, const Tensor& theta);

  /// Training with no hypergradient (run_inner: finite differences, black-box search) turns off
  /// the check that every loss-defining group is read (check_reads): a search may tune a value
  /// only L_val reads, or leave a declared group aside. On by default.
  void set_check_reads(bool on) { check_reads_ = on; }
  const BilevelProblem& problem() const { return *p_; }
  /// θ as the tapes use it: the problem's dtype, on w₀'s device.
  const Tensor& theta() const { return theta_; }
  /// θ as a result: a host tensor of its own (one copy, whether θ lives on the host or a device).
  Tensor theta_on_host() const { return theta_.device() == Device::cpu ? theta_.clone() : theta_.to(Device::cpu); }
  /// Where the problem's weights (w₀) live, and with them every tape and state of the run.
  Device device() const { return p_->w0.device(); }
  std::int64_t horizon() const { return p_->horizon; }
  /// S_0 = (w₀, zeros...).
  InnerState initial_state() const;
  /// Number of optimizer-state parts (2 for SGD, 3 for Adam).
  int state_parts() const;

  /// L_train and its gradient at step t (a reverse pass). Throws InnerDivergence when the loss
  /// or the gradient is not finite or the loss exceeds the problem's bound.
  LossPass gradient(const Tensor& w, std::int64_t t);
  /// ∇_θ L_train(w, λ(θ); batch t) (a reverse pass; zeros when no group enters the loss).
  Tensor theta_gradient(const Tensor& w, std::int64_t t);
  /// One forward-over-reverse pass of L_train at step t. `w_dirs` ([K, P], or [P] for K = 1;
  /// undefined: w carries no tangent) and `theta_dirs` ([K, N]; undefined: none) seed the
  /// tangents; the result's grad_tangent is d/dε ∇_w L(w + ε w_dirs, θ + ε theta_dirs).
  /// With `theta_adjoint`, theta_tangent is ∂_θ(w_dirs · ∇_w L) (needs a 1-D w_dirs). Without
  /// `want_grad` the result's grad stays undefined and the pass skips the products that only
  /// ∇_w L needs (reverse mode's backward sweep reads H·u alone).
  LossPass loss_pass(const Tensor& w, std::int64_t t, const Tensor& w_dirs, const Tensor& theta_dirs,
                     bool theta_adjoint, bool want_grad = true);

  /// S_{t+1} = Φ(S_t, g, λ_t) (plain mode). Throws InnerDivergence on non-finite weights.
  InnerState step(const InnerState& s, const Tensor& g, std::int64_t t);
  /// The reverse-mode product with the step's Jacobians, at (S_t, g, θ). With g_only, only
  /// adj_g (adj_state and adj_theta stay empty): the sweep then runs only the ops g reaches.
  StepVjp step_vjp(const InnerState& s, const Tensor& g, std::int64_t t, const InnerState& adj_next, bool g_only = false);
  /// The step's value and forward-mode product: S_t carries `s_dirs` (one [K, P] per part,
  /// undefined: zero), g carries `g_dirs` ([K, P], undefined: zero), θ the identity [N, N]
  /// (K = N; theta_identity: a block of its rows), so the tangents are the columns d S_{t+1} / dθ.
  StepJvp step_jvp(const InnerState& s, const std::vector<Tensor>& s_dirs, const Tensor& g, const Tensor& g_dirs,
                   std::int64_t t);

  /// L_val at w, its gradient ∇_w and its direct term ∂_θ L_val.
  struct ValPass {
    double loss = 0;
    Tensor grad_w;
    Tensor grad_theta;
  };
  ValPass validation(const Tensor& w);

  /// The values of the optimizer hyperparameters at step t as plain tensors ([1] or [P]).
  struct OptimizerValues {
    Tensor lr, momentum, weight_decay;
  };
  OptimizerValues optimizer_values(std::int64_t t);

  /// Stored passes (reverse mode's memory budget): with keep_pass(t), the next gradient(w, t)
  /// records L_train on a tape of its own and keeps it — activations and the ops' saved values —
  /// until loss_pass(w, t, ...) at the same w (the same bits) runs its tangent and adjoint
  /// sweeps on it, with no primal recomputation, and frees it. Same ops on the same values: the
  /// same bits as a pass recorded afresh.
  void keep_pass(std::int64_t t) { keep_.insert(t); }
  /// Bytes the kept passes hold now, and their peak so far.
  std::size_t kept_bytes() const { return kept_bytes_; }
  std::size_t kept_peak() const { return kept_peak_; }
  /// The bytes one recorded pass of L_train at (w, t) holds: its nodes' values (each storage
  /// once; w, and leaves held outside the tape such as a full-batch data set or θ, not counted;
  /// a mini-batch gathered for the step is). Records the loss (no sweep); the first call records
  /// it twice more to find the leaves held outside.
  std::size_t pass_bytes(const Tensor& w, std::int64_t t);

  /// The identity [N, N] that seeds θ's tangents in forward mode — or, after
  /// set_theta_columns, its rows begin..end-1 [K, N]: forward mode over one block of θ's
  /// columns (hpo/mpi/forward_columns.h spreads the blocks over ranks).
  const Tensor& theta_identity();
  void set_theta_columns(const Shard& columns);
  /// The block of θ's entries forward mode differentiates (default: all N).
  Shard theta_columns() const;
  PassCounts counts;

 private:
  struct Recorded {
    Var w, theta, loss;
  };
  /// L_train(w, λ(θ); batch t) recorded on `tape` (the loss tape unless a pass is kept) with w
  /// and θ as its leaves.
  Recorded record_loss(const Tensor& w, std::int64_t t) { return record_loss(loss_tape_, w, t); }
  Recorded record_loss(Tape& tape, const Tensor& w, std::int64_t t);
  struct KeptPass {
    std::unique_ptr<Tape> tape;
    Recorded rec;
    Tensor w;
    std::size_t bytes = 0;
  };
  /// The bytes of a recorded tape's node values, each storage once; w's storage and the leaves
  /// every recording shares (find_shared_leaves) not counted.
  std::size_t tape_bytes(const Tape& tape, const Tensor& w) const;
  /// Finds, once, the leaves of L_train's recording that outlive it (a full-batch data set, θ).
  void find_shared_leaves(const Tensor& w, std::int64_t t);
  /// The gradient of L_train at step t with respect to w or θ (one reverse pass); the loss too.
  Tensor reverse_pass(const Tensor& w, std::int64_t t, bool wrt_theta, double* loss);
  /// Data-parallel training: the loss and `parts` (those defined) summed over the shards in
  /// place (BilevelProblem::sum_over_shards); nothing when the problem is not sharded.
  void sum_over_shards(double& loss, std::initializer_list<Tensor*> parts) const;
  /// Unroll::step's one-pass path (kernels/optim_step.h); false where it does not apply.
  bool fused_step(const InnerState& s, const Tensor& g, std::int64_t t, InnerState& out);
  std::vector<Var> record_step(Tape& tape, const std::vector<Var>& s, const Var& g, const Var& theta, std::int64_t t);
  Var optimizer_value(Tape& tape, const Var& theta, HyperKind kind, double fixed, std::int64_t t);
  void check_finite_loss(double loss, const Tensor& g, std::int64_t t) const;
  /// Throws InnerDivergence naming parameter i when x (a [P] or [K, P] result of step t) has a
  /// non-finite entry, and Adam's denominator when it is the cause (adam_cause).
  void check_finite_step(const Tensor& x, const Tensor& v_next, std::int64_t t, const char* what,
                         const std::vector<Tensor>& inputs = {}) const;
  std::string adam_cause(const Tensor& v_next, std::int64_t i, std::int64_t t) const;
  /// Adam's v_{t+1} in a state (undefined for SGD).
  static Tensor adam_v(const InnerState& s) { return s.parts.size() > 2 ? s.parts[2] : Tensor(); }
  /// Marks the loss-defining groups whose θ slice reaches the recorded loss (or L_val); throws
  /// Error naming a group that no step of the horizon reads (see unroll.cpp).
  void check_reads(const Tape& tape, const Recorded& rec, const Tensor& w, std::int64_t t);

  const BilevelProblem* p_;
  Tensor theta_;
  Tensor identity_;
  Shard columns_;  // empty: every column
  Tape loss_tape_, step_tape_;
  std::vector<int> unread_;             ///< loss-defining groups no recorded loss has read yet
  std::vector<char> steps_recorded_;    ///< while some are: the steps whose loss was recorded
  std::int64_t distinct_steps_ = 0;
  bool val_reads_checked_ = false;      ///< L_val looked at once for groups L_train did not read
  bool check_reads_ = true;
  std::set<std::int64_t> keep_;             ///< steps whose next gradient pass is kept
  std::map<std::int64_t, KeptPass> kept_;   ///< the kept passes, by step
  std::size_t kept_bytes_ = 0, kept_peak_ = 0;
  std::vector<Tensor> shared_leaves_;   ///< leaves every recording of L_train holds (find_shared_leaves)
  bool shared_leaves_found_ = false;
};

/// ‖x‖∞ finite check shared by the methods: the index of the first NaN/inf element, or −1.
std::int64_t first_non_finite(const Tensor& x);

}  // namespace gradhpo::hpo
