// The exactness ladder: every applicable method's hypergradient beside the exact one, on one
// problem at one θ — relative error, cosine similarity, per-entry sign agreement, time and peak
// memory — and check_hypergradient, which compares any hypergradient (a method's or a user's own
// code) with central differences of the whole training run and says what to do about it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../registry.h"

namespace gradhpo::hpo {

/// One rung: a display name and a method made from the registry.
struct LadderMethod {
  std::string name;
  std::shared_ptr<const Method> method;
};

struct LadderRow {
  std::string name;
  bool ran = false;          ///< false: the method refused the problem (see note)
  std::string note;          ///< the refusal, or the method's own notes
  double rel_error = 0;      ///< ‖h − h*‖ / ‖h*‖
  double cosine = 0;         ///< h·h* / (‖h‖ ‖h*‖)
  double sign_agreement = 0; ///< fraction of entries with sgn h_i = sgn h*_i
  double seconds = 0;
  std::size_t peak_bytes = 0;
  Tensor d_theta;
};

/// The offline methods of gradhpo, made by name from `registry` (register_builtin_methods is
/// called on it first): reverse mode (exact reversal and checkpointing), forward mode, DrMAD,
/// generalized greedy's γ-weighted sum of one-step terms along the run, the T1–T2 one-step
/// hypergradient of the last step (exact and DARTS), and the IFT at w_T (conjugate gradients,
/// Neumann series; refused for optimizer-defining groups).
std::vector<LadderMethod> standard_ladder(double greedy_gamma = 0.9, Registry& registry = Registry::global());

/// Runs `reference` (default: "reverse" with store-all) and every method; a method that throws
/// Error is reported as refused with its message.
std::vector<LadderRow> exactness_ladder(const BilevelProblem& problem, const Tensor& theta,
                                        const std::vector<LadderMethod>& methods,
                                        const LadderMethod* reference = nullptr);
/// A fixed-width text table of the ladder (markdown pipes when `markdown`).
std::string ladder_table(const std::vector<LadderRow>& rows, bool markdown = false);

struct HypergradientCheck {
  bool ok = false;
  double rel_error = 0;                     ///< norm-wise, against finite differences
  std::vector<double> finite_differences;   ///< dL_val/dθ by central differences of the whole run
  std::vector<std::int64_t> worst;          ///< the entries furthest off, worst first (up to 5)
  std::string verdict;                      ///< what it means and what to do
};

/// Compares `candidate` [N] with central differences (Richardson-extrapolated, step `step` in
/// θ) of the entire training run. `tolerance` is relative, norm-wise.
HypergradientCheck check_hypergradient(const BilevelProblem& problem, const Tensor& theta, const Tensor& candidate,
                                       double tolerance = 1e-6, double step = 1e-4);
/// The same for a method, run at θ over the whole run.
HypergradientCheck check_hypergradient(const BilevelProblem& problem, const Tensor& theta, const Method& method,
                                       double tolerance = 1e-6, double step = 1e-4);

}  // namespace gradhpo::hpo
