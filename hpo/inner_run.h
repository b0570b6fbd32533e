// Plain training under a hyperparameter setting: the inner problem alone, with no derivative.
// What finite differences of the whole training run, black-box baselines and evaluation use;
// it runs the same step (Unroll::step) as every hypergradient method, so the same bits.
#pragma once

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

}  // namespace gradhpo::hpo
