#include "trials.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "../inner_run.h"
#include "../progress.h"
#include "../resources.h"

namespace gradhpo::hpo {

std::string SearchRun::brief() const {
  std::ostringstream s;
  s.precision(6);
  s << method << ": " << trials.size() << " trials";
  if (failures) s << " (" << failures << " failed)";
  s << ", " << inner_steps << " inner steps, " << seconds << " s; ";
  if (const Trial* t = best_trial()) {
    s << "best L_val " << t->val_loss << " at";
    for (std::size_t d = 0; d < t->values.size(); ++d) s << (d ? ", " : " ") << dimensions.at(d) << " = " << t->values[d];
  } else {
    s << "no trial finished";
  }
  s << "; stopped: " << stop_reason;
  return s.str();
}

SearchRun named_failures(SearchRun run, const std::string& name) {
  for (Trial& t : run.trials)
    if (t.failed) t.failure.method = name;
  return run;
}

void SearchOptions::validate(const BilevelProblem& problem) const {
  problem.validate();
  require(!problem.hyper.empty(), "search: the problem has no hyperparameters to search over");
  Box(problem.hyper, box);
  budget.validate(problem.horizon);
  require(max_trials >= 0, "search: max_trials must be >= 0 (0: as many as the budget allows), got " +
                               std::to_string(max_trials));
}

namespace {

const BilevelProblem& validated(const BilevelProblem& p, const SearchOptions& o) {
  o.validate(p);
  return p;
}

}  // namespace

Estimate search_estimate(const BilevelProblem& p, std::int64_t trials) {
  const std::size_t P = static_cast<std::size_t>(p.num_params()), sz = dtype_size(p.dtype());
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  const std::size_t N = static_cast<std::size_t>(p.hyper.size());
  const std::size_t n = static_cast<std::size_t>(std::max<std::int64_t>(1, trials));
  Estimate e;
  e.buffer_bytes = (2 * parts + 1) * P * sz + n * (2 * N + 16) * sizeof(double);
  e.gradient_equivalents = static_cast<double>(n) * static_cast<double>(p.horizon);
  e.explain = "one training run's S_t, S_{t+1} and g_t (" + std::to_string(parts) + " x P = " + std::to_string(P) +
              " numbers each) and " + std::to_string(n) + " trials' θ";
  return e;
}

TrialRunner::TrialRunner(const BilevelProblem& problem, const SearchOptions& options, std::string method)
    : problem_(&validated(problem, options)),
      box_(std::in_place, problem.hyper, options.box),
      meter_(options.budget),
      max_trials_(options.max_trials) {
  run_.method = std::move(method);
  for (std::size_t d = 0; d < box_->size(); ++d) run_.dimensions.push_back(box_->dimension(d).target);
  check_memory(run_.method, search_estimate(problem, planned_trials()), problem, {}, available_memory());
  report_progress("trial", 0, planned_trials());
}

TrialRunner::TrialRunner(const BilevelProblem& problem, const Budget& budget, int max_trials, std::string method)
    : problem_(&problem), meter_(budget), max_trials_(max_trials) {
  problem.validate();
  budget.validate(problem.horizon);
  require(max_trials >= 0, "search: max_trials must be >= 0 (0: as many as the budget allows), got " +
                               std::to_string(max_trials));
  run_.method = std::move(method);
  check_memory(run_.method, search_estimate(problem, planned_trials()), problem, {}, available_memory());
  report_progress("trial", 0, planned_trials());
}

const Box& TrialRunner::box() const {
  require(box_.has_value(), run_.method + ": this trial runner has no search box (its trials are at given θ)");
  return *box_;
}

bool TrialRunner::can_run() const {
  if (max_trials_ > 0 && static_cast<int>(run_.trials.size()) >= max_trials_) return false;
  return meter_.can_start(problem_->horizon);
}

const Trial& TrialRunner::run(const std::vector<double>& u) {
  Trial t;
  t.point = u;
  t.values = box().values(u);
  t.theta = box().theta(u);
  return record(std::move(t), "; at " + box().describe(u));
}

namespace {
thread_local TrialJournal* current_journal = nullptr;

/// Trials of a batch of up to q that max_trials and a budget in trials or inner steps leave.
std::int64_t count_room(const BudgetMeter& meter, int max_trials, std::size_t done, std::int64_t horizon, std::int64_t q) {
  const Budget& b = meter.budget();
  std::int64_t room = q;
  if (max_trials > 0) room = std::min<std::int64_t>(room, max_trials - static_cast<std::int64_t>(done));
  if (b.trials > 0) room = std::min(room, b.trials - meter.units());
  if (b.inner_steps > 0) room = std::min(room, (b.inner_steps - meter.steps_used()) / horizon);
  return std::max<std::int64_t>(room, 0);
}
}  // namespace

void TrialRunner::run_batch(const std::vector<std::vector<double>>& us) {
  // Checked on the counts only: the clock was read by batch_room at the batch's start.
  require(static_cast<std::int64_t>(us.size()) <= count_room(meter_, max_trials_, run_.trials.size(), problem_->horizon,
                                                             static_cast<std::int64_t>(us.size())),
          run_.method + ": a batch of " + std::to_string(us.size()) + " trials does not fit in what is left of the budget");
  std::vector<Trial> ts(us.size());
  std::vector<std::string> wheres(us.size());
  for (std::size_t k = 0; k < us.size(); ++k) {
    ts[k].point = us[k];
    ts[k].values = box().values(us[k]);
    ts[k].theta = box().theta(us[k]);
    wheres[k] = "; at " + box().describe(us[k]);
  }
  // The batch's trials that neither replay a recorded entry nor are a dry run's proposals are
  // trained together by the journal's train_batch, when it has one.
  std::vector<JournalEntry> trained;
  std::size_t first_trained = us.size();
  TrialJournal* journal = current_journal;
  if (journal && journal->train_batch && !journal->proposals) {
    first_trained = std::min(us.size(), journal->recorded.size() > journal->next
                                            ? journal->recorded.size() - journal->next
                                            : std::size_t{0});
    std::vector<Proposal> batch;
    for (std::size_t k = first_trained; k < us.size(); ++k)
      batch.push_back({ts[k].theta, run_.method, static_cast<int>(run_.trials.size() + k), wheres[k]});
    if (!batch.empty()) {
      trained = journal->train_batch(batch);
      require(trained.size() == batch.size(), run_.method + ": a batch of " + std::to_string(batch.size()) +
                                                  " trials came back with " + std::to_string(trained.size()) + " results");
    }
  }
  for (std::size_t k = 0; k < us.size(); ++k)
    record(std::move(ts[k]), wheres[k], k >= first_trained ? &trained[k - first_trained] : nullptr);
}

std::int64_t TrialRunner::batch_room(std::int64_t q) const {
  return can_run() ? count_room(meter_, max_trials_, run_.trials.size(), problem_->horizon, q) : 0;
}

const Trial& TrialRunner::run_at(const Tensor& theta) {
  Trial t;
  t.theta = theta.to(DType::f64).clone();
  return record(std::move(t), "");
}

TrialJournalScope::TrialJournalScope(TrialJournal* journal) : previous_(current_journal) { current_journal = journal; }
TrialJournalScope::~TrialJournalScope() { current_journal = previous_; }

JournalEntry train_proposal(const BilevelProblem& problem, const Proposal& p) {
  JournalEntry e;
  e.trial.index = p.index;
  e.trial.theta = p.theta;
  e.trial.inner_steps = problem.horizon;
  const WorkCount before = work_count();
  const Candidate sc = evaluate_candidate(problem, p.theta);
  e.work = work_count() - before;
  e.steps_run = sc.steps_run;
  e.trial.val_loss = sc.val_loss;
  e.trial.final_train_loss = sc.final_train_loss;
  e.trial.failed = sc.failed;
  if (sc.failed)
    e.trial.failure = failed_trial(problem.hyper, p.theta, p.method, p.index, sc.failed_step, sc.failed_value,
                                   sc.message + p.where);
  return e;
}

const Trial& TrialRunner::record(Trial t, const std::string& where, const JournalEntry* trained) {
  const auto start = std::chrono::steady_clock::now();
  t.index = static_cast<int>(run_.trials.size());
  t.inner_steps = problem_->horizon;
  std::int64_t steps_run = 0;
  WorkCount work;  // what training this trial did (replayed: what it did when it ran)
  TrialJournal* journal = current_journal;
  const std::size_t at = journal ? journal->next++ : 0;
  if (journal && at < journal->recorded.size()) {
    // Replayed: the recorded scores of the same θ (a resumed run), not trained again.
    const JournalEntry& e = journal->recorded[at];
    const Tensor mine = t.theta.to(DType::f64), theirs = e.trial.theta.to(DType::f64);
    require(mine.numel() == theirs.numel() && mine.to_vector() == theirs.to_vector(),
            run_.method + ": trial " + std::to_string(t.index) +
                " proposes another θ than the run store recorded; the resumed run is not the recorded one");
    steps_run = e.steps_run;
    work = e.work;
    meter_.charge_work(e.work);
    journal->replayed_work = journal->replayed_work + e.work;
    t.val_loss = e.trial.val_loss;
    t.final_train_loss = e.trial.final_train_loss;
    t.failed = e.trial.failed;
    t.failure = e.trial.failure;
    if (t.failed) ++run_.failures;
  } else if (journal && journal->proposals) {
    // A dry run: proposed, not trained.
    journal->proposals->push_back({t.theta.clone(), run_.method, t.index, where});
  } else {
    const JournalEntry e = trained ? *trained : train_proposal(*problem_, {t.theta, run_.method, t.index, where});
    steps_run = e.steps_run;
    work = e.work;
    t.val_loss = e.trial.val_loss;
    t.final_train_loss = e.trial.final_train_loss;
    t.failed = e.trial.failed;
    t.failure = e.trial.failure;
    if (t.failed) ++run_.failures;
  }
  meter_.charge(t.inner_steps);
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (journal && at >= journal->recorded.size() && journal->on_trial && !journal->proposals)
    journal->on_trial({t, steps_run, work});
  // Training's passes: one L_train gradient and one optimizer step per inner step run.
  run_.cost.gradient_evals += steps_run;
  run_.cost.step_passes += steps_run;
  run_.cost.seconds += t.seconds;
  history_bytes_ += (t.point.size() + t.values.size()) * sizeof(double) + t.theta.nbytes();
  note_bytes(0);
  if (!t.failed && (run_.best < 0 || t.val_loss < run_.best_val_loss())) run_.best = t.index;
  run_.trials.push_back(std::move(t));
  report_progress("trial", static_cast<std::int64_t>(run_.trials.size()), planned_trials());
  return run_.trials.back();
}

const Trial& TrialRunner::fail(const Tensor& theta, std::int64_t inner_step, std::string reason, double value) {
  Trial t;
  t.index = static_cast<int>(run_.trials.size());
  t.inner_steps = problem_->horizon;
  t.failed = true;
  t.failure = failed_trial(problem_->hyper, theta, run_.method, t.index, inner_step, value, std::move(reason));
  ++run_.failures;
  meter_.charge(t.inner_steps);
  if (theta.defined()) {
    t.theta = theta.to(DType::f64).clone();
    history_bytes_ += t.theta.nbytes();
  }
  note_bytes(0);
  // Journaled too (no training to replay: the same record is made again), so that the journal's
  // entries stay the runner's trials, index for index.
  if (current_journal && current_journal->next++ >= current_journal->recorded.size() && current_journal->on_trial)
    current_journal->on_trial({t, 0, {}});
  run_.trials.push_back(std::move(t));
  report_progress("trial", static_cast<std::int64_t>(run_.trials.size()), planned_trials());
  return run_.trials.back();
}

void TrialRunner::add_cost(const Cost& cost) {
  accumulate(run_.cost, cost);
  method_bytes_ = std::max(method_bytes_, cost.peak_bytes);
  note_bytes(0);
}

std::int64_t TrialRunner::planned_trials() const {
  const Budget& b = meter_.budget();
  std::int64_t n = b.inner_steps > 0 ? b.inner_steps / problem_->horizon : 0;
  if (b.trials > 0) n = n > 0 ? std::min(n, b.trials) : b.trials;
  if (max_trials_ > 0) n = n > 0 ? std::min<std::int64_t>(n, max_trials_) : max_trials_;
  return n;
}

void TrialRunner::note_bytes(std::size_t bytes) {
  run_.cost.peak_bytes = std::max(run_.cost.peak_bytes, history_bytes_ + std::max(bytes, method_bytes_));
}

SearchRun TrialRunner::finish(std::string stop_reason) {
  if (stop_reason.empty()) {
    stop_reason = max_trials_ > 0 && static_cast<int>(run_.trials.size()) >= max_trials_
                      ? "max trials (" + std::to_string(max_trials_) + ")"
                      : meter_.exhausted_reason(problem_->horizon);
  }
  run_.stop_reason = std::move(stop_reason);
  run_.inner_steps = meter_.steps_used();
  run_.seconds = meter_.seconds();
  run_.work = meter_.work();
  return std::move(run_);
}

}  // namespace gradhpo::hpo
