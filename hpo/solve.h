// Options → Summary (Ceres' Solver::Options / Solver::Summary; STYLE.md 15 and 17): the outer
// loop of gradient-based HPO as one library call.
//
//     hpo::register_builtin_methods();
//     hpo::SolveOptions o;
//     o.method = "forward";                          // any offline method of the registry
//     o.method_options = {{"clip-hessian", "3"}};    // its options, by name (validated)
//     o.outer.kind = hpo::OuterKind::sign;  o.outer.step = {0.1, 0.15, 4e-4};  o.outer.max_steps = 10;
//     hpo::Summary s = hpo::solve(problem, o);
//     std::cout << s.brief() << "\n" << s.full_report();
//
// Non-greedy (the default): every outer step trains from S_0 for the whole horizon and
// differentiates it. Greedy (`greedy_segment_steps` > 0): the horizon is cut into segments;
// after each the hyperparameters move and training carries on (outer.h has both loops and the
// rejection rule for diverged inner runs). Early stopping (Micaelli & Storkey, Appendix B,
// Figure 3): Summary::best_step is the step with the lowest L_val over every row, those before a
// resume included (greedy: the pass end whose carried weights have the lowest L_val), and
// best_theta its θ. With a state file, the state (state.h's SolveState) is saved after every outer
// step, atomically, and `resume` continues from it to the same bits as the uninterrupted run.
// A diverged inner run is a rejected step (outer.h), kept in the rows and in Summary::failures;
// a loop rejected more than max_rejections times gives up: Summary::gave_up, ok() false, and a
// stop_reason that says so — a caller warns and exits non-zero (tools/cmd_hpo.cpp). θ is kept in
// the groups' ranges by the outer optimizer's projection; SolveRow::clipped names what it moved.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "outer.h"
#include "state.h"

namespace gradhpo::hpo {

struct SolveOptions {
  std::string method = "forward";                   ///< registry name of an offline method
  std::map<std::string, std::string> method_options; ///< its options, by name (registry specs)
  OuterOptions outer;
  /// > 0: the greedy setting, hyperparameters updated every this many inner steps.
  std::int64_t greedy_segment_steps = 0;
  Tensor theta0;                                    ///< undefined: the groups' initial values
  /// Where the state is saved after every outer step (empty: nowhere).
  std::string state_file;
  /// Called after every outer step (after on_step) with the whole state — every row, the
  /// optimizer's state, where the next step starts: where a run store (run_store.h) commits it,
  /// so a row and the state it belongs to reach disk in one commit.
  std::function<void(const SolveState& state)> save;
  /// Continue from this state (its method and options must match; a larger max_steps is allowed).
  const SolveState* resume = nullptr;
  /// Called after every outer step with its row and the weights w the step's inner run ended with
  /// (undefined when the step was rejected). The caller may add metrics to the row (they are
  /// saved with it in the state); return false to stop.
  std::function<bool(SolveRow& row, const Tensor& final_weights)> on_step;

  /// Throws Error naming the field: an unknown method (listing the offline ones), its options,
  /// the outer options for this problem's groups, a greedy segment outside [1, T], a method that
  /// cannot differentiate segments in the greedy setting or this problem's groups, a θ₀ of the
  /// wrong size, a resume state of another method or other options.
  void validate(const BilevelProblem& problem) const;
  /// What a SolveState records of these options and compares on resume: the method's options
  /// (every one, defaults included), the outer optimizer's (all but max_steps) and the greedy
  /// segment, as a JSON object.
  std::string recorded_options() const;
};

struct Summary {
  std::string method;               ///< what ran: "forward (clip-hessian = 3) + sign", "... greedy (H = 6)"
  std::vector<SolveRow> rows;       ///< every outer step, those before a resume included (rows[i].step == i)
  Tensor theta;                     ///< the final θ
  int best_step = -1;               ///< early stopping: the row with the lowest L_val (−1: none)
  Tensor best_theta;                ///< its θ (undefined when best_step < 0)
  InnerState final_state;           ///< greedy: the weights training ended with
  std::vector<FailedTrial> failures;///< every rejected step
  int rejections = 0;
  /// The loop gave up after more than max_rejections diverged inner runs (OuterRun::gave_up):
  /// `theta` is then not a learned result.
  bool gave_up = false;
  std::string stop_reason;
  double seconds = 0;               ///< the outer loop's wall time in this call (resumed: since the resume)
  Cost cost;                        ///< summed over every row (peaks: the largest)

  /// False when the run did not end well: it gave up on rejections. What a program's exit status
  /// follows.
  bool ok() const { return !gave_up; }
  /// One line: "forward + sign: 10 outer steps, 0 rejected, best L_val 0.4288 at step 7, 41.2 s;
  /// stopped: max steps (10)".
  std::string brief() const;
  /// Every row (step, L_val, ‖dL/dθ‖, time, rejection) and every hyperparameter of the final and
  /// the best θ, by entry name.
  std::string full_report(const Hyperparameters& h) const;
};

Summary solve(const BilevelProblem& problem, const SolveOptions& options);

}  // namespace gradhpo::hpo
