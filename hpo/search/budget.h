// One budget, counted the same way for every method that hpo/compare.h puts side by side.
//
// A budget is a number of inner training steps, a wall time, or both (whichever runs out
// first). Work is charged in units whose inner-step cost is known before they start: one
// training run of T steps for a black-box trial, one outer step (a hypergradient through the
// whole horizon: T steps, plus the passes its Cost reports) for a gradient-based method.
//
//   inner steps  a unit starts only if its T steps fit in what is left, so the budget is never
//                exceeded and the number of units is floor(budget / T) — known before any run;
//   seconds      a unit starts while the time used is under the limit (a unit in flight is not
//                cut off, so a run overshoots by at most one unit's time).
//
// A unit that diverges is charged its full T steps, on both sides: an outer step that the outer
// loop rejects does not record where it stopped, and charging a failed trial less would let a
// search with many diverging candidates spend more runs than one whose candidates all train.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "../hypergradient.h"

namespace gradhpo::hpo {

struct Budget {
  std::int64_t inner_steps = 0;  ///< 0: no limit on inner steps
  double seconds = 0;            ///< 0: no limit on wall time
  /// Throws Error naming the field: a budget of zero (neither limit set), a negative or
  /// non-finite limit, or an inner-step budget smaller than one training run of T steps.
  void validate(std::int64_t horizon) const;
  /// "1200 inner steps", "30 s", "1200 inner steps or 30 s".
  std::string describe() const;
};

/// What a method has used of its budget. The clock starts at construction.
class BudgetMeter {
 public:
  explicit BudgetMeter(Budget budget);
  /// Whether a unit of `steps` inner steps may start now.
  bool can_start(std::int64_t steps) const;
  void charge(std::int64_t steps) { steps_used_ += steps; }
  std::int64_t steps_used() const { return steps_used_; }
  double seconds() const;
  const Budget& budget() const { return budget_; }
  /// Why no further unit of `steps` may start: "inner-step budget: 1200 of 1200 used (T = 60)".
  std::string exhausted_reason(std::int64_t steps) const;

 private:
  Budget budget_;
  std::int64_t steps_used_ = 0;
  std::chrono::steady_clock::time_point start_;
};


}  // namespace gradhpo::hpo
