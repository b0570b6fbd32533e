// Trials of a black-box search and the one place that runs them: train under a candidate θ
// with run_inner, record the validation loss, charge the budget, and turn a diverged run into a
// failed trial (recorded as a FailedTrial, trial.h; the search goes on). The comparison's own
// baselines (a hand-tuned schedule, hypergradient descent restarted from random points, the
// greedy setting's passes) record their points through the same runner, at a given θ.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../method.h"
#include "../trial.h"
#include "budget.h"
#include "space.h"

namespace gradhpo::hpo {

struct Trial {
  int index = 0;
  std::vector<double> point;    ///< unit coordinates u (empty: a trial at a given θ, no box)
  std::vector<double> values;   ///< λ per box dimension (likewise)
  Tensor theta;                 ///< the raw θ [N] trained under (float64)
  double val_loss = std::numeric_limits<double>::quiet_NaN();  ///< NaN when failed
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  bool failed = false;
  FailedTrial failure;          ///< when failed: what, where and why (the search's name, this index, λ)
  std::int64_t inner_steps = 0; ///< charged to the budget (T, also when it diverged)
  double seconds = 0;
};

struct SearchRun {
  std::string method;           ///< "random search (seed 0)", "grid search (5 × 5)", ...
  std::vector<std::string> dimensions;  ///< the box's targets, naming Trial::values
  std::vector<Trial> trials;
  int best = -1;                ///< index of the trial with the lowest validation loss (−1: none finished)
  int failures = 0;
  std::int64_t inner_steps = 0; ///< charged to the budget
  double seconds = 0;           ///< the whole search, its own work (GP fits, acquisition) included
  /// Engine work of the whole search in plain-step equivalents (0 when the budget has no
  /// work_per_step). trials.size() is the count a seconds or work budget produced: Budget::trials
  /// set to it replays the same trials.
  double work = 0;
  /// Totals: time, gradient evaluations and optimizer steps of training; peak_bytes: the
  /// search's own buffers (the trial history, the GP's matrices), not the model's.
  Cost cost;
  std::string stop_reason;

  const Trial* best_trial() const { return best >= 0 ? &trials.at(static_cast<std::size_t>(best)) : nullptr; }
  double best_val_loss() const { return best >= 0 ? best_trial()->val_loss : std::numeric_limits<double>::quiet_NaN(); }
  /// "random search (seed 0): 20 trials (1 failed), 1200 inner steps, 0.41 s; best L_val 0.0012
  /// at lr = 0.31, momentum = 0.88; stopped: inner-step budget ..."
  std::string brief() const;
};

/// The run with every failed trial's record naming the search by its registry name ("random"),
/// as FailedTrial::method promises (a runner knows only the search's label): what every search's
/// registry entry returns.
SearchRun named_failures(SearchRun run, const std::string& name);

/// A trial as a run store keeps it (hpo/run_store.h): the trial and the inner steps its training
/// ran (its gradient evaluations).
struct JournalEntry {
  Trial trial;
  std::int64_t steps_run = 0;
  WorkCount work;  ///< the engine work its training did (charged again when it is replayed)
};

/// One trial a search proposes, as a dry run records it (TrialJournal::proposals): where it
/// trains, and what its failure record would name.
struct Proposal {
  Tensor theta;         ///< raw θ [N] (float64)
  std::string method;   ///< the runner's label
  int index = 0;        ///< the trial's index in its search
  std::string where;    ///< appended to a failure's reason ("; at lr = 0.3, ...")
};

/// Trains one proposed trial as TrialRunner does (its scores, its failure record, the inner
/// steps and engine work its training took): TrialRunner trains its own trials with it, and
/// hpo/mpi/search.h spreads a search's proposals over ranks with it.
JournalEntry train_proposal(const BilevelProblem& problem, const Proposal& proposal);

/// The trials of one method as a run store journals them: every trial a TrialRunner records on
/// this thread is handed to `on_trial` (where the store commits it); on a resume the `recorded`
/// ones are replayed in order instead of trained — the search proposes the same θ again (its
/// draws derive from its seed and the trials before), the recorded scores are taken and charged
/// as they were, and a θ that is not the recorded one's bits is an Error (the run is not the one
/// recorded). Installed for a scope with TrialJournalScope (the comparison harness, per method).
struct TrialJournal {
  std::vector<JournalEntry> recorded;
  std::function<void(const JournalEntry&)> on_trial;
  /// Trials seen so far, over every runner of the scope (a method may run several in turn):
  /// the position of the next one in `recorded`.
  std::size_t next = 0;
  /// The work of the trials replayed so far (a method's work includes what its replayed trials did).
  WorkCount replayed_work;
  /// A dry run (hpo/mpi/search.h): the trials past `recorded` are proposed here — θ, label,
  /// index — and not trained (their scores stay NaN; each is charged its T steps, so the search
  /// proposes as many as its budget in inner steps or trials allows). Null: trials train.
  std::vector<Proposal>* proposals = nullptr;
  /// Trains a batch of proposals elsewhere and returns their entries in the same order
  /// (hpo/mpi/search.h: over the ranks, for Bayesian optimization's batch of q points); called by
  /// TrialRunner::run_batch with the batch's trials past `recorded`. Null: trained here, one
  /// after another.
  std::function<std::vector<JournalEntry>(const std::vector<Proposal>&)> train_batch;
};

/// Makes `journal` the journal of the trials run on this thread while it lives (null: none).
class TrialJournalScope {
 public:
  explicit TrialJournalScope(TrialJournal* journal);
  ~TrialJournalScope();
  TrialJournalScope(const TrialJournalScope&) = delete;
  TrialJournalScope& operator=(const TrialJournalScope&) = delete;

 private:
  TrialJournal* previous_;
};

/// What every search is given; each search's options add their own fields and checks.
struct SearchOptions {
  std::vector<Dimension> box;
  Budget budget;
  int max_trials = 0;  ///< 0: as many as the budget allows
  /// The checks every search makes before any work: the problem (BilevelProblem::validate, and
  /// at least one hyperparameter), the box against its hyperparameters (Box), the budget against
  /// its horizon (Budget::validate), max_trials >= 0. Throws Error naming the field.
  void validate(const BilevelProblem& problem) const;
};

/// The buffers of a search before any work: each trial is one training run (S_t, S_{t+1} and
/// g_t), and the history keeps θ and the values of `trials` trials (0: unknown, one counted).
Estimate search_estimate(const BilevelProblem& problem, std::int64_t trials);

/// Runs trials for one search (construction calls SearchOptions::validate, and refuses a search
/// whose search_estimate exceeds the memory available: resources.h).
class TrialRunner {
 public:
  TrialRunner(const BilevelProblem& problem, const SearchOptions& options, std::string method);
  /// A runner of trials at given θ (run_at, fail), with no box: checks the problem, the budget
  /// against its horizon and max_trials >= 0.
  TrialRunner(const BilevelProblem& problem, const Budget& budget, int max_trials, std::string method);
  /// The box (throws Error for a runner made without one).
  const Box& box() const;
  const BilevelProblem& problem() const { return *problem_; }
  /// Whether another training run fits in the budget (and max_trials, when set).
  bool can_run() const;
  /// Trains at the unit point u of the box and records the trial.
  const Trial& run(const std::vector<double>& u);
  /// Trains at the unit points `us` as one batch and records them in order, as run(u) one after
  /// another would (the same trials, bit for bit); under a journal with train_batch, the batch's
  /// trials are trained there together. Call with at most batch_room(us.size()) points.
  void run_batch(const std::vector<std::vector<double>>& us);
  /// How many trials of a batch of up to q may start now: 0 when can_run() is false; else q
  /// capped by what max_trials and a budget in trials or inner steps leave (a budget in seconds
  /// or work is read once, at the batch's start: a batch overshoots it by at most its q trials).
  std::int64_t batch_room(std::int64_t q) const;
  /// Trains at θ [N] and records the trial (its point and values stay empty).
  const Trial& run_at(const Tensor& theta);
  /// Records a trial at θ that failed before its training run could be scored (a method's own
  /// run diverged): charged T inner steps like every trial. `value`: the loss or entry that
  /// failed (InnerDivergence::value; NaN: not about a value).
  const Trial& fail(const Tensor& theta, std::int64_t inner_step, std::string reason,
                    double value = std::numeric_limits<double>::quiet_NaN());
  /// Adds work the method did besides training its trials (an outer loop's hypergradients) to
  /// the run's Cost; its peak bytes count beside the trial history.
  void add_cost(const Cost& cost);
  const std::vector<Trial>& trials() const { return run_.trials; }
  /// Tells the run about buffers the search holds (the GP's), for its peak bytes.
  void note_bytes(std::size_t bytes);
  /// The finished run; `stop_reason` empty: the budget's (or max_trials') reason.
  SearchRun finish(std::string stop_reason = "");
  /// Seconds (on the budget clock) and work (plain-step equivalents) used since construction.
  double seconds_used() const { return meter_.seconds(); }
  double work_used() const { return meter_.work(); }
  /// The trials the budget (and max_trials) allows, 0 when only wall time limits them.
  std::int64_t planned_trials() const;

 private:
  /// Scores θ by training once, charges the budget and records the trial.
  /// `trained`: its entry, trained elsewhere (run_batch); null: trained here when not replayed.
  const Trial& record(Trial t, const std::string& where, const JournalEntry* trained = nullptr);
  const BilevelProblem* problem_;
  std::optional<Box> box_;
  std::size_t method_bytes_ = 0;
  BudgetMeter meter_;
  int max_trials_;
  std::size_t history_bytes_ = 0;
  SearchRun run_;
};

}  // namespace gradhpo::hpo
