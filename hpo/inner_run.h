// Plain training under a hyperparameter setting: the inner problem alone, with no derivative.
// What finite differences of the whole training run, black-box baselines and evaluation use;
// it runs the same step (Unroll::step) as every hypergradient method, so the same bits.
#pragma once

#include <limits>
#include <string>

#include "hypergradient.h"

namespace gradhpo::hpo {

struct InnerRun {
  InnerState final_state;
  double val_loss = 0;         ///< L_val at the end
  double final_train_loss = 0; ///< L_train at the last step
  double seconds = 0;
  std::int64_t steps = 0;
};

/// Trains over `segment` (default: the whole run from S_0) and evaluates L_val at the end.
/// Throws InnerDivergence when training diverges.
InnerRun run_inner(const BilevelProblem& problem, const Tensor& theta, const Segment* segment = nullptr);

/// A hyperparameter setting scored as every search and comparison scores a candidate: trained
/// from S_0 (run_inner) and judged by its validation loss. It fails when training diverges or
/// the validation loss is not finite; a failed point is never a best one.
struct Candidate {
  double val_loss = std::numeric_limits<double>::quiet_NaN();          ///< NaN when failed
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  bool failed = false;
  std::string message;        ///< why it failed
  std::int64_t steps_run = 0; ///< inner steps trained (to the diverging one, inclusive)
  std::int64_t failed_step = -1;  ///< the inner step training diverged at (−1: it did not, or L_val failed)
  double failed_value = std::numeric_limits<double>::quiet_NaN();  ///< the loss or entry that failed
};
Candidate evaluate_candidate(const BilevelProblem& problem, const Tensor& theta);

}  // namespace gradhpo::hpo
