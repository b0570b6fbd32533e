// The outer loop: hyperparameters learned by steps on their hypergradients.
//
// Outer optimizers:
//   sign   Micaelli & Storkey, Algorithm 1 (Section 4, "Convergence from hypergradient signs"):
//          θ_n ← θ_n − γ_n sgn(dL/dθ_n), and γ_n is halved whenever that hypergradient's sign
//          differs from the previous outer step's. Stopping rule: stop once every γ_n has been
//          halved `sign_halvings_to_stop` times (0: run all max_steps) — the signs have then
//          flipped that often, "an indicator of convergence instead of their magnitude".
//   sgd    θ ← θ − η dL/dθ
//   adam   Kingma & Ba 2015, with bias correction
// each with optional clipping of the hypergradient to ±clip first, and each followed by the
// projection of θ onto the groups' ranges (Hyperparameters::project: λ stays in its kind's valid
// range or the user's box — a weight decay never goes below 0, a momentum never reaches 1). The
// entries the projection moved are reported (OuterStep::clipped); where nothing is clipped the
// projection leaves θ's bits alone. Projected Adam/SGD keep their moments as they are; the sign
// optimizer's γ and signs are Algorithm 1's whether or not the step was clipped.
//
// Non-greedy (run_outer): every outer step trains from S_0 for the whole horizon and
// differentiates it. Greedy (run_greedy): the horizon is cut into segments of H < T steps;
// after each segment the hyperparameters are updated from that segment's hypergradient (S at its
// start held fixed) and training carries on from where it is — the same code, so the
// short-horizon bias (Wu et al. 2018) shows side by side.
//
// An inner run that diverges (NaN/inf, or a loss above the problem's bound) is never fed to the
// outer optimizer: the step is rejected, θ goes back to the previous value, every step size is
// halved, and the rejection is recorded as a FailedTrial (trial.h) with the method, the outer
// step, the inner step and the hyperparameters. After more than max_rejections rejections the
// loop gives up: OuterRun::gave_up is set and stop_reason says so — the θ it holds then is the
// last one that trained, never a result to report as learned (halving the steps again and again
// would only shrink the update towards nothing: the schedule of Algorithm 1 started at 0 stays 0).
//
// These are the loops themselves; hpo::solve (solve.h) runs them from validated options by a
// method's registry name, keeps the typed resume state (state.h) and does early stopping.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hypergradient.h"
#include "method.h"
#include "trial.h"

namespace gradhpo::hpo {

enum class OuterKind : std::uint8_t { sign, sgd, adam };
const char* outer_name(OuterKind k);
OuterKind parse_outer(const std::string& name);

struct OuterOptions {
  OuterKind kind = OuterKind::sign;
  /// Step size per hyperparameter group (γ for sign, η for sgd/adam); one value: every group.
  std::vector<double> step = {0.1};
  double clip = 0;                  ///< clip hypergradients to ±clip before the update (0: off)
  int max_steps = 10;               ///< outer steps (non-greedy) or passes over the horizon (greedy)
  int sign_halvings_to_stop = 0;    ///< sign: stop when every γ has been halved this often
  int max_rejections = 5;           ///< diverged inner runs tolerated before giving up
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  /// Throws Error naming the field (non-finite or non-positive step, negative clip, ...).
  void validate(std::size_t groups) const;
};

/// The outer optimizer's state (for resumable runs: a plain struct of vectors).
struct OuterState {
  std::vector<double> step;       ///< current step size per hyperparameter
  std::vector<int> last_sign;     ///< sign: previous outer step's signs (0: none yet)
  std::vector<int> halvings;      ///< sign: how often each γ_n was halved
  std::vector<double> m, v;       ///< adam moments
  std::int64_t t = 0;             ///< updates taken
};

class OuterOptimizer {
 public:
  /// `hyper` (whose ranges θ is projected onto) must outlive the optimizer.
  OuterOptimizer(const Hyperparameters& hyper, OuterOptions options);
  /// θ ← update(θ, dL/dθ) in place (hypergradient clipped first when asked), then θ projected
  /// onto the groups' ranges. Returns the flat indices of θ the projection moved (ascending).
  std::vector<std::int64_t> update(Tensor& theta, const Tensor& hypergradient);
  /// After a rejected step: every step size halved.
  void halve_steps();
  /// The sign optimizer's stopping rule.
  bool converged() const;
  const OuterState& state() const { return state_; }
  OuterState& state() { return state_; }
  const OuterOptions& options() const { return options_; }

 private:
  OuterOptions options_;
  OuterState state_;
  const Hyperparameters* hyper_;  ///< the groups whose ranges θ is projected onto
};

/// One row per outer step (or per greedy segment).
struct OuterStep {
  int step = 0;                   ///< outer step (greedy: update) index
  std::int64_t first_inner = 0;   ///< greedy: the segment's first inner step
  Tensor theta;                   ///< θ the hypergradient was taken at
  Tensor hypergradient;           ///< dL_val/dθ (undefined when rejected)
  double val_loss = 0;
  double train_loss = 0;
  Cost cost;
  bool rejected = false;
  FailedTrial failure;            ///< when rejected: method, outer step, inner step, hyperparameters, reason
  std::string message;            ///< when rejected: rejection_message(failure)
  Tensor next_theta;              ///< θ after this step (the update, or the θ a rejection went back to)
  /// Flat indices of next_theta that the projection onto the groups' ranges moved (the update
  /// would have left λ outside its range); empty when nothing was clipped or the step was rejected.
  std::vector<std::int64_t> clipped;
  Tensor final_weights;           ///< w_T of this step's inner run (undefined when rejected)
  int rejections = 0;             ///< rejected steps so far, this one included
  /// The loop's own rule that ends it after this step, whatever the callback returns (too many
  /// rejections; non-greedy: the sign optimizer's stopping rule), as OuterRun::stop_reason will
  /// say it; empty while the loop goes on. A checkpoint records it, so a resume of a loop that
  /// had ended takes no more steps.
  std::string stop_reason;
  int pass = 0;                   ///< greedy: the pass over the horizon this segment belongs to
  // Greedy: where the loop goes on after this step (what a checkpoint holds besides θ and the
  // optimizer's state): the pass, the next segment's first inner step and the state S it starts
  // from (empty: S_0, a new pass).
  int next_pass = 0;
  std::int64_t next_first = 0;
  InnerState next_start;
};

/// Where an interrupted run continues: θ and the outer optimizer's state after `next_step`
/// outer steps (greedy: updates), what a checkpoint written from the callback holds (solve.h
/// keeps it as the typed, versioned SolveState of state.h).
struct OuterResume {
  Tensor theta;
  Tensor previous_theta;          ///< non-greedy: the last θ whose run did not diverge
  OuterState state;
  int next_step = 0;
  int rejections = 0;
  // Greedy: OuterStep's next_pass, next_first and next_start of the last step taken.
  int pass = 0;
  std::int64_t first_inner = 0;
  InnerState start;
};

struct OuterRun {
  std::vector<OuterStep> steps;
  Tensor theta;                   ///< the final θ
  InnerState final_state;         ///< greedy: the weights training ended with
  std::string stop_reason;
  int rejections = 0;
  /// The loop stopped because more than max_rejections inner runs diverged: `theta` is not a
  /// learned result, and a caller should say so and fail (hpo::Summary::ok()).
  bool gave_up = false;
  double seconds = 0;
};

/// Called after each outer step (progress output, checkpoints). Return false to stop.
using OuterCallback = std::function<bool(const OuterStep& step, const OuterOptimizer& optimizer)>;

/// Non-greedy: max_steps outer steps, each differentiating the whole horizon from S_0.
/// With `resume`, continues an interrupted run: the same bits as the uninterrupted one (the rows
/// of the steps before next_step are the caller's to keep).
OuterRun run_outer(const BilevelProblem& problem, const Method& method, const OuterOptions& options,
                   const Tensor& theta0 = Tensor(), const OuterCallback& callback = nullptr,
                   const OuterResume* resume = nullptr);
/// Greedy: hyperparameters updated every `segment_steps` inner steps, the weights carried on,
/// for max_steps passes over the horizon (each pass trains from S_0 again). With `resume`, as
/// run_outer: continues to the same bits. The method must differentiate segments (Support::segments).
OuterRun run_greedy(const BilevelProblem& problem, std::int64_t segment_steps, const Method& method,
                    const OuterOptions& options, const Tensor& theta0 = Tensor(), const OuterCallback& callback = nullptr,
                    const OuterResume* resume = nullptr);

/// "outer step 3, inner step 120: <reason>; hyperparameters: lr[0] = 0.3, momentum = 0.95": where a
/// rejected step diverged and at which hyperparameters (the first 12 entries, then the count).
std::string rejection_message(const FailedTrial& failure);
/// The same for a divergence at θ (the record made by failed_trial, method unnamed).
std::string divergence_message(const Hyperparameters& h, const Tensor& theta, int outer_step, const InnerDivergence& e);

}  // namespace gradhpo::hpo
