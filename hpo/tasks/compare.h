// The equal-budget comparison: several hyperparameter optimizers on one problem under one
// budget (inner training steps, wall time, engine work or a trial count, search/budget.h), each
// charged the same way, with one row per method — best validation loss, test score, wall time,
// work, peak memory and the hyperparameters found — rendered as a table (plain text or
// markdown, at most 120 columns), CSV or JSON; and the same over several paired seeds with
// mean, standard deviation and standard error (compare_seeds).
//
// Equal compute (Micaelli & Storkey, Appendix B: random search ran "for a comparable GPU time";
// Li & Talwalkar 2019): with Equalise::seconds (or ::work) the first method runs under the
// given budget and every other method gets the seconds (the plain-step equivalents of work) it
// used, so a black-box search runs as many trials as fit in the gradient method's compute.
// Before any method's clock starts, a calibration run trains once at the initial θ (measuring
// one plain step's work, and paying the GEMM planner's first-run timing, engine/kernels/gemm.h)
// and each method's warm_up runs (an offline method: one hypergradient over two steps, so the
// shapes of its products are planned too).
//
// Methods are entries, each constructed from the registry (registry.h) by name and options:
//   offline         an outer loop (outer.h) over an offline hypergradient method ("forward",
//                   "reverse", ...): non-greedy (run_outer) — each outer step trains through the
//                   whole horizon once and is charged T inner steps, its hypergradient's own work
//                   (forward-over-reverse passes, tangent memory) summed into the row's Cost;
//                   max_steps is set by the budget (floor(B/T) outer steps, or until the time
//                   runs out), the sign optimizer's stopping rule can still end it earlier — or
//                   in the greedy setting (run_greedy, Micaelli & Storkey's Figure 3): the same
//                   method on segments, a pass over the horizon charged T and its end θ scored.
//   online          an online method ("online-t1t2", "online-greedy", "hyperdistill",
//                   "hypergradient-descent"): passes over the horizon from w₀ with θ carried
//                   from pass to pass, each pass charged T; its end θ trained from w₀ scores it.
//   search          random, grid, Bayesian optimization ("random", "grid", "bayesian"): one
//                   trial trains once, charged T inner steps; and HOAG ("hoag", hoag/register.h),
//                   which solves its inner problem by L-BFGS, not by T training steps: each
//                   pass over the training loss it makes is charged as one inner step per batch
//                   its h averages, never more than the budget holds. Its θ_k are scored like
//                   every method's: trained for T steps from w₀ (outside the budget).
// The papers' own baselines (a hand-tuned cosine schedule, hypergradient descent restarted from
// random points) are in schedule_baselines.h.
// "Best validation loss" is the lowest L_val among the points a method actually trained at (a
// trial, or the θ of an outer step), and the hyperparameters reported are that point's: no
// method is credited with a final θ it never evaluated. The test score retrains at that point
// (outside the budget, same bits as the run itself) and calls the caller's evaluation.
//
// Over MPI ranks (hpo/mpi/compare.h) every seed's methods run as independent rows — run_row,
// the piece compare() runs each method with — and give the same rows (the pooled compare_seeds).
//
// Micaelli & Storkey (Section 5.2, "Baseline Comparison", Table 1) compare their method with random search and
// Bayesian optimization this way, "for the same computational budget".
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "classification.h"
#include "row_pool.h"
#include "../hoag/hoag.h"
#include "../outer.h"
#include "../registry.h"
#include "../trial.h"
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
  /// Units charged: trials, outer steps or online passes (HOAG: iterations). What a seconds or
  /// work budget produced: replay_budget(r) gives the same run back.
  int evaluations = 0;
  int failures = 0;             ///< diverged trials, or rejected outer steps
  /// One record per failure (trial.h): a diverged trial, a rejected outer step, an online pass
  /// that diverged or whose θ failed to train from w₀; `method` is the row's name there.
  std::vector<FailedTrial> failed_trials;
  std::int64_t inner_steps = 0; ///< charged to the budget
  /// Wall time of the method on the budget clock (search/budget.h), measured by the comparison
  /// around its run (the retraining for the test score excluded).
  double seconds = 0;
  /// Engine work of the method (engine/work_count.h) in plain-training-step equivalents.
  double work = 0;
  Budget budget;                ///< the budget this method was given (equalised: the first method's use)
  std::size_t peak_bytes = 0;   ///< peak of the method's own buffers (Cost::peak_bytes)
  Cost cost;                    ///< summed over the run
  std::string stop_reason;
  /// What a resumed comparison needs to replay this method as it ran, by name (e.g. the trial
  /// count a budget in seconds produced); kept with the row in the run store (compare_record.h).
  std::map<std::string, std::string> metadata;
};

/// A method the harness can run: `run` must stay within the budget it is given; `validate`
/// (optional) rejects a configuration under that budget before any method runs.
struct CompareMethod {
  std::string name;
  std::function<MethodResult(const BilevelProblem& problem, const Budget& budget)> run;
  std::function<void(const BilevelProblem& problem, const Budget& budget)> validate;
  /// Optional: work that is no method's (planning the shapes of its products), run before any
  /// method's clock starts.
  std::function<void(const BilevelProblem& problem)> warm_up;
};

/// The budget that replays a row: exactly r.evaluations units (a resume of a seconds budget).
Budget replay_budget(const MethodResult& r);

/// Option values by name, as text ({"clip-hessian", "3"}), for a registry entry.
using OptionTexts = std::map<std::string, std::string>;

/// The non-greedy outer loop over `method` under a budget: max_steps from the budget, each
/// outer step charged T inner steps through the same BudgetMeter as the searches.
OuterRun run_outer_within(const BilevelProblem& problem, const Method& method, OuterOptions outer, const Budget& budget,
                          const Tensor& theta0 = Tensor());
/// Its row: the best non-rejected outer step.
MethodResult outer_result(const BilevelProblem& problem, std::string name, const OuterRun& run);
/// A search's row: its best trial.
MethodResult search_result(const BilevelProblem& problem, std::string name, const SearchRun& run);
/// Fills r.hyperparameters and r.hyperparameters_brief from r.theta (for a method's own entry).
void describe_hyperparameters(const Hyperparameters& h, MethodResult& r);

/// The non-greedy outer loop over an offline method, shown as `label`.
CompareMethod offline_entry(std::string label, std::shared_ptr<const Method> method, OuterOptions outer,
                            Tensor theta0 = Tensor());
/// The same for the registry's offline method `name` with `options` (Registry::global()).
CompareMethod offline_entry(std::string label, const std::string& name, const OptionTexts& options, OuterOptions outer,
                            Tensor theta0 = Tensor());
/// The greedy setting of the outer loop (run_greedy: the same offline method on `segments`
/// segments of T / segments steps, θ updated after each and training carried on; Micaelli &
/// Storkey, Figure 3's greedy runs): passes over the horizon while the budget lasts, each
/// pass's end θ trained from w₀ to score it (TrialRunner::run_at), the row its best pass.
CompareMethod greedy_setting_entry(std::string label, std::shared_ptr<const Method> method, OuterOptions outer,
                                   std::int64_t segments);
/// The registry's online method `name`; `online` is the optimizer of its per-step θ updates.
CompareMethod online_entry(std::string label, const std::string& name, OuterOptions online, const OptionTexts& options = {});
/// The registry's search `name` over `common.box` (its budget is replaced by the comparison's).
CompareMethod search_entry(std::string label, const std::string& name, SearchOptions common, const OptionTexts& options = {});

/// The searches with their typed options (the budget in them is replaced by the comparison's).
CompareMethod random_search_method(std::string name, RandomSearchOptions options);
CompareMethod grid_search_method(std::string name, GridSearchOptions options);
CompareMethod bayesian_method(std::string name, BayesianOptions options);
/// HOAG (Pedregosa 2016) under the budget (hoag/register.h, hoag_within); options.max_iterations still caps it.
CompareMethod hoag_method(std::string name, HoagOptions options);

/// How the methods' budgets are made equal (see the file comment).
enum class Equalise : std::uint8_t {
  none,     ///< every method gets ComparisonOptions::budget (e.g. equal inner steps, labelled so)
  seconds,  ///< the first method gets the budget; the others the seconds it used
  work,     ///< the first method gets the budget; the others the plain-step equivalents of work it used
};
const char* equalise_name(Equalise e);
/// "none", "seconds", "work" (throws Error listing them otherwise).
Equalise parse_equalise(const std::string& name);

struct ComparisonOptions {
  Budget budget;
  Equalise equalise = Equalise::none;
  /// The searches' space, described for the table ("lr[0..9]: log-uniform [1e-4, 1] ..."); optional.
  std::string search_space;
  Scorer evaluate;              ///< optional: the test columns stay empty without it
  /// Optional: the validation accuracy column (a method minimizes L_val, a loss; its accuracy
  /// on the same set is what papers report beside the test accuracy).
  Scorer evaluate_validation;
  std::string test_name = "test";
  /// Rows a resumed comparison already has (by the method's index in the list): those methods
  /// are not run again, their recorded rows are used as they are.
  std::map<std::size_t, MethodResult> recorded;
  /// Called with each method's index and finished row (scores included), before the next method
  /// starts: where a run store commits it (hpo/run_store.h, compare_record.h).
  std::function<void(std::size_t index, const MethodResult& row)> on_result;
  /// Trials of a method that had not finished when the run was interrupted (by the method's
  /// index): replayed instead of trained (TrialJournal, search/trials.h), the rest run anew.
  std::map<std::size_t, std::vector<JournalEntry>> recorded_trials;
  /// Called with the method's index, the trial's position among the method's trials, and each
  /// trial its TrialRunners record (the searches', and the points the baselines and the greedy
  /// setting score): where a run store commits it.
  std::function<void(std::size_t index, std::size_t position, const JournalEntry& trial)> on_trial;
};

enum class TableFormat : std::uint8_t { text, markdown };

struct Comparison {
  std::string problem;          ///< BilevelProblem::description
  Budget budget;                ///< as given (each row holds the budget it ran under)
  Equalise equalise = Equalise::none;
  std::string search_space;
  double work_per_step = 0;     ///< one plain inner step's engine work (the calibration run's)
  double calibration_seconds = 0;  ///< the calibration run and warm-ups, charged to no method
  std::int64_t horizon = 0;
  std::string test_name;
  std::vector<MethodResult> results;  ///< one per method, in the order given

  /// The budget line, one row per method (method, runs, failed, inner steps, work, wall s, best
  /// L_val, validation and test accuracy) in at most 120 columns, then the search space, the
  /// hyperparameters each method found and every failed trial's reason (each line cut at 120
  /// columns; the files hold them whole).
  std::string table(TableFormat format = TableFormat::text) const;
  /// The same columns, every hyperparameter in its own column (name=value pairs in one cell).
  std::string csv() const;
  /// {"problem": ..., "budget": {...}, "results": [{...}, ...]}, every hyperparameter by name; a
  /// row with failures lists them as "failed_trials" (trial, inner_step, reason, λ by name).
  std::string json() const;
};

/// Validates everything first (validate_comparison), calibrates and warms up every method (see
/// the file comment), then runs the methods one after another (run_row), each equalised to the
/// first's use (row_budget).
Comparison compare(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                   const ComparisonOptions& options);

// --- the pieces of compare(), for a comparison whose rows run elsewhere (hpo/mpi/compare.h) ---

/// Everything compare() checks before any work — the problem, the budget against T, the method
/// names (non-empty, unique), each method's run and its own validate — throwing Error naming it.
void validate_comparison(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                         const ComparisonOptions& options);
/// The comparison with every field that no row measures (no results; work_per_step and
/// calibration_seconds 0).
Comparison comparison_header(const BilevelProblem& problem, const ComparisonOptions& options);

/// The calibration run: one plain training run at the initial θ, outside every method's clock.
struct Calibration {
  double work_per_step = 0;  ///< its engine work per inner step: the unit of work budgets
  double seconds = 0;        ///< its wall time (warm-ups that follow it may add theirs)
};
Calibration calibrate(const BilevelProblem& problem);
/// The budget every row starts from: options.budget, its work_per_step the calibration's where
/// unset (throws Error for a work budget when the calibration did no measurable work).
Budget given_budget(const ComparisonOptions& options, const Calibration& calibration);
/// A row's budget: `given`; with Equalise::seconds or ::work and a `first` row (the first
/// method's, recorded or run), what that row used (`given` again when it used nothing).
Budget row_budget(const ComparisonOptions& options, const Budget& given, const MethodResult* first);
/// The row of a method that stopped with an error (never fatal to the comparison): failures 1,
/// the stop reason "stopped: <why>", one failed-trial record at the inner step given (−1: unknown).
MethodResult failed_row(const Hyperparameters& h, const std::string& method, const std::string& why,
                        std::int64_t inner_step = -1, double value = std::numeric_limits<double>::quiet_NaN());
/// One row: method `m` (the index-th of options' lists) under `budget` — timed on the budget
/// clock, its engine work in plain steps of `work_per_step` (the given budget's), its trials
/// replayed from options.recorded_trials[index] and journaled to options.on_trial — then scored
/// at its best θ (options.evaluate, evaluate_validation; outside the clock). What the method
/// throws — a divergence it cannot recover from, any other error — is its failed row, never
/// thrown. Neither recorded rows nor on_result are looked at here (compare() does).
MethodResult run_row(const BilevelProblem& problem, const CompareMethod& m, std::size_t index, const Budget& budget,
                     double work_per_step, const ComparisonOptions& options);

/// One seed's comparison as its caller builds it: the problem, the methods and the options.
/// `problem` may alias the object that owns it (a task, an experiment: std::shared_ptr's
/// aliasing constructor), which then lives as long as the plan.
struct ComparisonPlan {
  std::shared_ptr<const BilevelProblem> problem;
  std::vector<CompareMethod> methods;
  ComparisonOptions options;
};
/// compare(*plan.problem, plan.methods, plan.options).
Comparison compare(const ComparisonPlan& plan);

/// Mean, sample standard deviation and standard error (sd / sqrt(n)) of the finite values.
struct SeedSpread {
  int n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  ///< NaN for n < 2
  double se = std::numeric_limits<double>::quiet_NaN();
};
SeedSpread seed_spread(const std::vector<double>& values);

/// The same comparison over paired seeds: runs[i] is the comparison at seeds[i], where every
/// method shares that seed (data order, initialization, search draws: the caller's run_one
/// builds the problem and the methods from it).
struct SeededComparison {
  std::vector<std::uint64_t> seeds;
  std::vector<Comparison> runs;

  /// Per method (by row): its test accuracy, best L_val, seconds, work and runs over the seeds.
  SeedSpread test_accuracy(std::size_t method) const;
  SeedSpread best_val_loss(std::size_t method) const;
  SeedSpread seconds(std::size_t method) const;
  SeedSpread work(std::size_t method) const;
  SeedSpread evaluations(std::size_t method) const;
  /// One row per method: test accuracy mean ± sd (se), best L_val mean ± sd, mean runs, wall
  /// s and work; then, for each method against the best by mean test accuracy, its difference
  /// and whether it is within the spread (smaller than two standard errors of the difference:
  /// "not resolved by N seeds"). At most 120 columns.
  std::string table(TableFormat format = TableFormat::text) const;
  /// {"seeds": [...], "summary": [{"method", "test_accuracy": {mean, sd, se, n}, ...}], "runs": [each seed's json]}.
  std::string json() const;
};

/// Runs run_one at each seed (the seeds must be distinct).
SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<Comparison(std::uint64_t seed)>& run_one);
/// compare(plan(seed)) at each seed: what the pooled form below gives on any pool.
SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<ComparisonPlan(std::uint64_t seed)>& plan);

/// The same comparison with every seed's methods spread over a pool (row_pool.h; MPI ranks:
/// hpo/mpi/compare.h), collective over its processes, compare_pooled.cpp:
///   - The coordinator builds every seed's plan first and checks it as compare() does (an error
///     is thrown on every process, before any work); it keeps the rows and trials the plan's
///     options hold (options.recorded, recorded_trials: a resumed run) and its hooks.
///   - The rows still missing run as independent tasks, seed k's method i being one task (on the
///     other processes plan(seed) is built when a task needs it, one plan at a time). A task
///     calibrates (once per seed and process), warms its method up, runs it and scores it
///     (run_row): the single-process row, timing aside. With Equalise::seconds or ::work a seed's
///     first method runs first and the others in a second round, under what it used.
///   - As each row arrives the coordinator calls its plan's options.on_result (the run store
///     commits it) and on_trial where it runs tasks itself (one process); a worker's trials are
///     not journaled. A task that fails outside its method (building the plan there) is a failed
///     row naming the worker, never fatal to the job.
/// Every process returns the same SeededComparison. With a budget in inner steps or trials, or
/// Equalise::work, it is the single-process compare_seeds' bit for bit but for the timing fields
/// (seconds, calibration_seconds, a seconds budget); with a budget in seconds the trial counts
/// depend on the workers' clocks — and a resumed run replays the rows it recorded as they were.
SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<ComparisonPlan(std::uint64_t seed)>& plan, RowPool& pool);

}  // namespace gradhpo::hpo
