// One budget, counted the same way for every method that hpo/compare.h puts side by side.
//
// A budget limits one or more of (whichever runs out first):
//   inner_steps  inner training steps. A unit (below) starts only if its steps fit in what is
//                left, so the budget is never exceeded and the number of units is floor(B / T),
//                known before any run. Labelled "inner steps" everywhere: it is not compute (an
//                outer step of forward mode costs several times a plain training run's T steps);
//   seconds      wall time on the same threads, read from the budget clock (injectable, for
//                tests); a unit starts while the time used is under the limit, so a run
//                overshoots by at most one unit;
//   work         engine work (engine/work_count.h: GEMM and convolution multiply-adds plus
//                elementwise operations) in plain-training-step equivalents: work_per_step is one
//                plain inner step's work, measured by the comparison before any method runs
//                (compare.h); a unit starts while the work used is under the limit, like seconds;
//   trials       exactly this many units: what a seconds or work budget produced, so that a
//                resume, or a run on another machine, replays the same trials.
// Work is charged in units: one training run of T steps for a black-box trial, one outer step (a
// hypergradient through the whole horizon) for a gradient-based method, one pass over the horizon
// for an online method.
//
// A unit that diverges is charged its full T steps, on both sides: an outer step that the outer
// loop rejects does not record where it stopped, and charging a failed trial less would let a
// search with many diverging candidates spend more runs than one whose candidates all train.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "../hypergradient.h"
#include "../../engine/work_count.h"

namespace gradhpo::hpo {

struct Budget {
  std::int64_t inner_steps = 0;  ///< 0: no limit on inner steps
  double seconds = 0;            ///< 0: no limit on wall time
  double work = 0;               ///< 0: no limit on engine work, in plain-training-step equivalents
  std::int64_t trials = 0;       ///< 0: no limit on units; N: exactly N units (trials, outer steps, passes)
  /// One plain inner step's engine work (WorkCount::total), which `work` is counted in; set by
  /// the comparison's calibration run, required > 0 when `work` is set.
  double work_per_step = 0;
  /// Throws Error naming the field: a budget of zero (no limit set), a negative or non-finite
  /// limit, an inner-step budget smaller than one training run of T steps, or a work budget
  /// without its work_per_step.
  void validate(std::int64_t horizon) const;
  /// "1200 inner steps", "30 s", "1200 inner steps or 30 s", "12.5k plain-step equivalents of work",
  /// "exactly 12 trials".
  std::string describe() const;
};

/// Seconds, as the budget reads them: a steady clock by default.
using BudgetClock = std::function<double()>;
/// The clock every BudgetMeter made while it is in scope reads (tests inject one that advances
/// with the work done, so no test depends on wall time). Nests; not thread-safe.
class ScopedBudgetClock {
 public:
  explicit ScopedBudgetClock(BudgetClock clock);
  ~ScopedBudgetClock();
  ScopedBudgetClock(const ScopedBudgetClock&) = delete;
  ScopedBudgetClock& operator=(const ScopedBudgetClock&) = delete;

 private:
  BudgetClock previous_;
};
/// Seconds on the budget clock now.
double budget_clock_now();

/// What a method has used of its budget. The clock and the work count start at construction.
class BudgetMeter {
 public:
  explicit BudgetMeter(Budget budget);
  /// Whether a unit of `steps` inner steps may start now.
  bool can_start(std::int64_t steps) const;
  /// Charges one unit of `steps` inner steps.
  void charge(std::int64_t steps) {
    steps_used_ += steps;
    ++units_;
  }
  std::int64_t steps_used() const { return steps_used_; }
  std::int64_t units() const { return units_; }
  double seconds() const;
  /// Engine work since construction, in plain-step equivalents (0 without work_per_step), with
  /// the work of units replayed from a run store (charge_work) as if it had been done here.
  double work() const;
  /// Work a replayed unit did when it ran (a resumed run does not train it again).
  void charge_work(const WorkCount& done) { replayed_ = replayed_ + done; }
  const Budget& budget() const { return budget_; }
  /// Why no further unit of `steps` may start: "inner-step budget: 1200 of 1200 used (T = 60)".
  std::string exhausted_reason(std::int64_t steps) const;

 private:
  Budget budget_;
  std::int64_t steps_used_ = 0;
  std::int64_t units_ = 0;
  double start_ = 0;
  WorkCount work_start_;
  WorkCount replayed_;
};

/// Engine work in plain-step equivalents between two counts (0 when work_per_step is not set).
double work_in_steps(const WorkCount& used, double work_per_step);

}  // namespace gradhpo::hpo
