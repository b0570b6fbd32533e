// The equal-budget comparison: several hyperparameter optimizers on one problem under one
// budget (inner training steps or wall time, search/budget.h), each charged the same way, with
// one row per method — best validation loss, test score, wall time, peak memory and the
// hyperparameters found — rendered as a table (plain text or markdown), CSV or JSON.
//
// Methods are entries of two kinds:
//   gradient-based  an outer loop (outer.h, non-greedy run_outer) over a hypergradient method,
//                   e.g. forward mode (forward.h). Each outer step trains through the whole
//                   horizon once: it is charged T inner steps, and its hypergradient's own work
//                   (forward-over-reverse passes, tangent memory) is summed into the row's Cost.
//                   max_steps is set by the budget (floor(B/T) outer steps, or until the time
//                   runs out); the sign optimizer's stopping rule can still end it earlier.
//   black-box       random search, grid search, Bayesian optimization (search/): one trial
//                   trains once, charged T inner steps.
//   HOAG            (hoag.h) solves its inner problem by L-BFGS, not by T training steps: each
//                   pass over the training loss it makes (an L-BFGS evaluation, a CG
//                   Hessian-vector product) is charged as one inner step per batch its h
//                   averages, and never more than the budget holds (HoagOptions::max_passes;
//                   a cut-short last iteration is not recorded). Its θ_k are scored like every method's: trained for T
//                   steps from w₀ (outside the budget), so the columns compare alike.
// "Best validation loss" is the lowest L_val among the points a method actually trained at (a
// trial, or the θ of an outer step), and the hyperparameters reported are that point's: no
// method is credited with a final θ it never evaluated. The test score retrains at that point
// (outside the budget, same bits as the run itself) and calls the caller's evaluation.
//
// Micaelli & Storkey (Section 5.2, "Baseline Comparison", Table 1) compare their method with random search and
// Bayesian optimization this way, "for the same computational budget".
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "classification.h"
#include "../methods/forward.h"
#include "../hoag/hoag.h"
#include "../outer.h"
#include "../search/bayesian/bayesian.h"
#include "../search/grid_search.h"
#include "../search/random_search.h"

namespace gradhpo::hpo {

/// Loss and accuracy of weights on one set of examples.
struct Score {
  double loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();  ///< in [0, 1]; NaN when not measured
};
/// Scores the weights w_T that training under a method's best θ ends with (on a test set, or on
/// the validation set).
using Scorer = std::function<Score(const Tensor& w)>;
/// ClassificationTask::evaluate on `set` (the task and the set are held by the callable).
Scorer scorer(std::shared_ptr<const ClassificationTask> task, data::Dataset set);

/// One row of the comparison.
struct MethodResult {
  std::string method;
  Tensor theta;                 ///< raw θ [N] with the best validation loss (undefined: none finished)
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::pair<std::string, double>> hyperparameters;  ///< λ at theta, by entry name
  /// The same for a table cell: a group whose entries all hold one value is one item
  /// ("l2 = 0.01 (all 7850)"), and at most 6 items are shown.
  std::string hyperparameters_brief;
  Score test;                   ///< at theta, on ComparisonOptions::evaluate's set
  Score validation;             ///< at theta, on ComparisonOptions::evaluate_validation's set
  int evaluations = 0;          ///< trials, or outer steps
  int failures = 0;             ///< diverged trials, or rejected outer steps
  std::int64_t inner_steps = 0; ///< charged to the budget
  double seconds = 0;           ///< wall time of the method (the retraining for the test score excluded)
  std::size_t peak_bytes = 0;   ///< peak of the method's own buffers (Cost::peak_bytes)
  Cost cost;                    ///< summed over the run
  std::string stop_reason;
};

/// A method the harness can run: `run` must stay within the budget it is given; `validate`
/// (optional) rejects a configuration under that budget before any method runs.
struct CompareMethod {
  std::string name;
  std::function<MethodResult(const BilevelProblem& problem, const Budget& budget)> run;
  std::function<void(const BilevelProblem& problem, const Budget& budget)> validate;
};

/// The non-greedy outer loop over `method` under a budget: max_steps from the budget, each
/// outer step charged T inner steps through the same BudgetMeter as the searches.
OuterRun run_outer_within(const BilevelProblem& problem, const HypergradientMethod& method, OuterOptions outer,
                          const Budget& budget, const Tensor& theta0 = Tensor());
/// Its row: the best non-rejected outer step.
MethodResult outer_result(const BilevelProblem& problem, std::string name, const OuterRun& run);
/// A search's row: its best trial.
MethodResult search_result(const BilevelProblem& problem, std::string name, const SearchRun& run);

CompareMethod outer_loop_method(std::string name, HypergradientMethod method, OuterOptions outer,
                                Tensor theta0 = Tensor());
/// The outer loop over forward_hypergradient (forward mode through training).
CompareMethod forward_mode_method(std::string name, OuterOptions outer, ForwardOptions forward = {},
                                  Tensor theta0 = Tensor());
/// The searches; the budget in their options is replaced by the comparison's.
CompareMethod random_search_method(std::string name, RandomSearchOptions options);
CompareMethod grid_search_method(std::string name, GridSearchOptions options);
CompareMethod bayesian_method(std::string name, BayesianOptions options);
/// Fills r.hyperparameters and r.hyperparameters_brief from r.theta (for a method's own entry).
void describe_hyperparameters(const Hyperparameters& h, MethodResult& r);
/// HOAG (Pedregosa 2016) under the budget; options.max_iterations still caps it.
CompareMethod hoag_method(std::string name, HoagOptions options);

struct ComparisonOptions {
  Budget budget;
  Scorer evaluate;              ///< optional: the test columns stay empty without it
  /// Optional: the validation accuracy column (a method minimizes L_val, a loss; its accuracy
  /// on the same set is what papers report beside the test accuracy).
  Scorer evaluate_validation;
  std::string test_name = "test";
};

enum class TableFormat : std::uint8_t { text, markdown };

struct Comparison {
  std::string problem;          ///< BilevelProblem::description
  Budget budget;
  std::int64_t horizon = 0;
  std::string test_name;
  std::vector<MethodResult> results;  ///< one per method, in the order given

  /// One row per method: method, runs, failed, inner steps, best L_val, validation accuracy,
  /// test accuracy and loss,
  /// wall time, peak memory, hyperparameters found (the first few).
  std::string table(TableFormat format = TableFormat::text) const;
  /// The same columns, every hyperparameter in its own column (name=value pairs in one cell).
  std::string csv() const;
  /// {"problem": ..., "budget": {...}, "results": [{...}, ...]}, every hyperparameter by name.
  std::string json() const;
};

/// Validates everything first (problem, budget against T, method names unique and non-empty,
/// each method's own validate), then runs the methods one after another.
Comparison compare(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                   const ComparisonOptions& options);

}  // namespace gradhpo::hpo
