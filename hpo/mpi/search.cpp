#include "search.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "../../engine/error.h"
#include "../registry.h"
#include "task_pool.h"

namespace gradhpo::mpi {

namespace {

// A trial's journal entry on the wire: fixed-size numbers as they are in memory, strings and
// vectors as a u64 length and their elements (every rank runs the same build).
class Out {
 public:
  template <class T>
  void pod(const T& x) {
    bytes.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    bytes.append(s);
  }
  std::string bytes;
};

class In {
 public:
  explicit In(const std::string& b) : b_(b) {}
  template <class T>
  T pod() {
    require(at_ + sizeof(T) <= b_.size(), "mpi search: a trial record cut short");
    T x;
    std::memcpy(&x, b_.data() + at_, sizeof x);
    at_ += sizeof x;
    return x;
  }
  std::string str() {
    const auto n = pod<std::uint64_t>();
    require(at_ + n <= b_.size(), "mpi search: a trial record cut short");
    std::string s = b_.substr(at_, n);
    at_ += n;
    return s;
  }

 private:
  const std::string& b_;
  std::size_t at_ = 0;
};

std::string encode(const hpo::JournalEntry& e) {
  Out o;
  const hpo::Trial& t = e.trial;
  o.pod<std::int32_t>(t.index);
  const std::vector<double> theta = t.theta.to_vector();
  o.pod<std::uint64_t>(theta.size());
  for (double x : theta) o.pod(x);
  o.pod(t.val_loss);
  o.pod(t.final_train_loss);
  o.pod<std::uint8_t>(t.failed ? 1 : 0);
  o.pod(t.inner_steps);
  o.pod(e.steps_run);
  o.pod(e.work.multiply_adds);
  o.pod(e.work.elementwise);
  const hpo::FailedTrial& f = t.failure;
  o.str(f.method);
  o.pod(f.trial);
  o.pod(f.inner_step);
  o.pod(f.value);
  o.pod<std::uint64_t>(f.hyperparameters.size());
  for (const auto& [name, value] : f.hyperparameters) {
    o.str(name);
    o.pod(value);
  }
  o.str(f.reason);
  return o.bytes;
}

hpo::JournalEntry decode(const std::string& bytes) {
  In in(bytes);
  hpo::JournalEntry e;
  hpo::Trial& t = e.trial;
  t.index = in.pod<std::int32_t>();
  std::vector<double> theta(in.pod<std::uint64_t>());
  for (double& x : theta) x = in.pod<double>();
  t.theta = Tensor::from(theta, Shape{static_cast<std::int64_t>(theta.size())}, DType::f64);
  t.val_loss = in.pod<double>();
  t.final_train_loss = in.pod<double>();
  t.failed = in.pod<std::uint8_t>() != 0;
  t.inner_steps = in.pod<std::int64_t>();
  e.steps_run = in.pod<std::int64_t>();
  e.work.multiply_adds = in.pod<std::int64_t>();
  e.work.elementwise = in.pod<std::int64_t>();
  hpo::FailedTrial& f = t.failure;
  f.method = in.str();
  f.trial = in.pod<std::int64_t>();
  f.inner_step = in.pod<std::int64_t>();
  f.value = in.pod<double>();
  const auto n = in.pod<std::uint64_t>();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name = in.str();
    f.hyperparameters.emplace_back(std::move(name), in.pod<double>());
  }
  f.reason = in.str();
  return e;
}

/// Every rank's double as rank 0 has it.
double from_root(const Communicator& comm, double x) {
  std::string bytes(sizeof x, '\0');
  std::memcpy(bytes.data(), &x, sizeof x);
  comm.broadcast(bytes);
  std::memcpy(&x, bytes.data(), sizeof x);
  return x;
}

/// Trains `proposals` over the ranks (task_pool.h) and gives every rank their entries in index
/// order — or throws, on every rank, the error a trial threw (not a diverged run: that is a
/// failed trial, recorded in its entry).
std::vector<hpo::JournalEntry> train_over_ranks(const Communicator& comm, const hpo::BilevelProblem& problem,
                                                const std::vector<hpo::Proposal>& proposals) {
  const std::vector<TaskOutcome> outcomes = run_tasks(
      comm, static_cast<std::int64_t>(proposals.size()),
      [&](std::int64_t i) { return encode(hpo::train_proposal(problem, proposals[static_cast<std::size_t>(i)])); });
  std::string all;
  if (comm.is_root()) {
    Out o;
    std::string error;
    for (const TaskOutcome& t : outcomes) {
      if (!t.ok && error.empty())
        error = "mpi search: trial " + std::to_string(proposals[static_cast<std::size_t>(t.index)].index) +
                " failed on rank " + std::to_string(t.rank) + ": " + t.error;
      o.str(t.bytes);
    }
    all = error.empty() ? "+" + o.bytes : "!" + error;
  }
  comm.broadcast(all);
  require(!all.empty() && all[0] == '+', all.empty() ? "mpi search: nothing from rank 0" : all.substr(1));
  all.erase(0, 1);
  In in(all);
  std::vector<hpo::JournalEntry> entries;
  for (std::size_t i = 0; i < proposals.size(); ++i) entries.push_back(decode(in.str()));
  return entries;
}

/// The trials the search proposes past `recorded`, under `common` (a dry run: nothing trains).
std::vector<hpo::Proposal> propose(const std::string& name, const hpo::BilevelProblem& problem,
                                   const hpo::SearchOptions& common, const std::map<std::string, std::string>& options,
                                   const std::vector<hpo::JournalEntry>& recorded) {
  std::vector<hpo::Proposal> proposals;
  hpo::TrialJournal dry;
  dry.recorded = recorded;
  dry.proposals = &proposals;
  const hpo::TrialJournalScope scope(&dry);
  (void)hpo::Registry::global().run_search(name, problem, common, options);
  return proposals;
}

/// The search replaying `recorded` (every trial of it); `caller`'s on_trial then sees the trials
/// past `already` in index order, as they would have been handed to it had they trained here.
hpo::SearchRun replay(const std::string& name, const hpo::BilevelProblem& problem, const hpo::SearchOptions& common,
                      const std::map<std::string, std::string>& options, const std::vector<hpo::JournalEntry>& recorded,
                      std::size_t already, hpo::TrialJournal* caller) {
  hpo::TrialJournal journal;
  journal.recorded = recorded;
  hpo::SearchRun run;
  {
    const hpo::TrialJournalScope scope(&journal);
    run = hpo::Registry::global().run_search(name, problem, common, options);
  }
  if (caller) {
    caller->next = recorded.size();
    caller->replayed_work = caller->replayed_work + journal.replayed_work;
    if (caller->on_trial)
      for (std::size_t i = already; i < run.trials.size(); ++i) {
        hpo::JournalEntry e = recorded[i];
        const hpo::FailedTrial failure = e.trial.failure;  // the runner's label, as a journal sees it
        e.trial = run.trials[i];
        e.trial.failure = failure;
        caller->on_trial(e);
      }
  }
  return run;
}

std::vector<hpo::JournalEntry> concatenated(std::vector<hpo::JournalEntry> a, const std::vector<hpo::JournalEntry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

hpo::SearchRun run_search(const Communicator& comm, const std::string& name, const hpo::BilevelProblem& problem,
                          const hpo::SearchOptions& common, const std::map<std::string, std::string>& options,
                          hpo::TrialJournal* journal) {
  require(name == "random" || name == "grid" || name == "bayesian",
          "mpi search: '" + name + "' is not a search spread over ranks (random, grid, bayesian)");
  require(common.budget.work == 0,
          "mpi search: a budget in engine work is counted by each rank's own work counter, which no rank can read for "
          "the others while they train; give inner steps, trials or seconds");
  const std::vector<hpo::JournalEntry> recorded = journal ? journal->recorded : std::vector<hpo::JournalEntry>{};
  // Every rank reads rank 0's steady clock (a broadcast per reading, made at the same point of
  // the same deterministic search on every rank), so that every rank decides alike when the time
  // is up.
  const hpo::BudgetClock root_clock = [&comm] {
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return from_root(comm, comm.is_root() ? now : 0.0);
  };

  if (name == "bayesian") {
    // Each round's batch of q proposals is trained over the ranks; the results come back in
    // index order and the search goes on, the same on every rank.
    hpo::TrialJournal rounds;
    rounds.recorded = recorded;
    rounds.train_batch = [&](const std::vector<hpo::Proposal>& batch) { return train_over_ranks(comm, problem, batch); };
    if (journal) rounds.on_trial = journal->on_trial;
    std::optional<hpo::ScopedBudgetClock> clock;
    if (common.budget.seconds > 0) clock.emplace(root_clock);
    hpo::SearchRun run;
    {
      const hpo::TrialJournalScope scope(&rounds);
      run = hpo::Registry::global().run_search(name, problem, common, options);
    }
    if (journal) {
      journal->next = rounds.next;
      journal->replayed_work = journal->replayed_work + rounds.replayed_work;
    }
    return run;
  }

  if (common.budget.seconds == 0) {
    // A count budget: a dry run proposes every trial, the ranks train them, the search replays
    // (its seconds: rank 0's for the whole, not the replay's).
    const double start = root_clock();
    const std::vector<hpo::Proposal> proposals = propose(name, problem, common, options, recorded);
    const std::vector<hpo::JournalEntry> trained = train_over_ranks(comm, problem, proposals);
    hpo::SearchRun run = replay(name, problem, common, options, concatenated(recorded, trained), recorded.size(), journal);
    run.seconds = root_clock() - start;
    return run;
  }

  // A budget in seconds: rank 0 decides. Trials are proposed and trained in chunks of twice the
  // rank count while rank 0's clock, started here, is under the limit (a chunk starts while time
  // is left, so the search overshoots by at most one chunk, as one process overshoots by at most
  // one trial); each chunk is handed to the caller's journal once trained. The count reached is
  // then replayed as a budget of exactly that many trials (Budget::trials: what a resume does),
  // and the run reports the seconds budget as its stop reason and rank 0's time.
  const double start = root_clock();
  const std::int64_t chunk = 2 * comm.size();
  std::vector<hpo::JournalEntry> done = recorded;
  hpo::SearchOptions counted = common;
  counted.budget.seconds = 0;
  bool exhausted = false;
  while (!exhausted && root_clock() - start < common.budget.seconds) {
    counted.budget.trials = static_cast<std::int64_t>(done.size()) + chunk;
    if (common.budget.trials > 0) counted.budget.trials = std::min(counted.budget.trials, common.budget.trials);
    const std::vector<hpo::Proposal> proposals = propose(name, problem, counted, options, done);
    exhausted = static_cast<std::int64_t>(proposals.size()) < chunk;  // the grid, max_trials or trials ran out
    const std::vector<hpo::JournalEntry> trained = train_over_ranks(comm, problem, proposals);
    if (journal && journal->on_trial) {
      counted.budget.trials = static_cast<std::int64_t>(done.size() + trained.size());
      (void)replay(name, problem, counted, options, concatenated(done, trained), done.size(), journal);
    }
    done.insert(done.end(), trained.begin(), trained.end());
  }
  counted.budget.trials = static_cast<std::int64_t>(done.size());
  hpo::SearchRun run = done.empty() ? hpo::SearchRun{} : replay(name, problem, counted, options, done, done.size(), nullptr);
  if (journal) journal->next = done.size();
  run.seconds = root_clock() - start;
  if (!exhausted) {
    hpo::Budget b;
    b.seconds = common.budget.seconds;
    run.stop_reason = "time budget: " + b.describe() + " used on rank 0 (" + std::to_string(done.size()) +
                      " trials; replayed as a budget of exactly that many)";
  }
  return run;
}

}  // namespace gradhpo::mpi
