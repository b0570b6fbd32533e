// Random, grid and Bayesian search (q = 1 and batches of q = 3) with their trials trained over
// the ranks (mpi::run_search): the single-process SearchRun — every trial's θ, scores and
// failure record, the best trial and the stop reason — at 1, 2 and 4 ranks, the same on every
// rank; a diverged trial is a failed trial there as here. A run store's trials resume with any
// rank count (the new ones journaled on rank 0, as one process journals them), and a budget in
// seconds gives every rank the same trials, which its count replays in one process.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gradhpo/hpo/mpi/search.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/tasks/register_all.h>

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// The toy schedule problem with a low loss bound, so that the larger rates diverge.
hpo::ClassificationTask task_with_failures() {
  ToySpec spec = schedule_spec();
  spec.horizon = 12;
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.loss_bound = 1.5;  // the initial loss is about log 3 = 1.1
  return task;
}

hpo::SearchOptions options(std::int64_t inner_steps) {
  hpo::SearchOptions o;
  o.box = {{"lr", 0.01, 20.0, true}, {"momentum", 0.1, 0.9, false}};  // the toy momentum is a sigmoid: (0, 1)
  o.budget.inner_steps = inner_steps;
  return o;
}

std::string record_of(const hpo::SearchRun& run) {
  std::string s = run.method + "|" + std::to_string(run.best) + "|" + std::to_string(run.failures) + "|" +
                  run.stop_reason + "|";
  for (const hpo::Trial& t : run.trials)
    s += bits_of(t.theta) + bits_of(std::vector<double>{t.val_loss, t.final_train_loss}) + (t.failed ? "F" : "-") +
         t.failure.reason + "|";
  return s;
}

void check_same_as_one_process(const std::string& name, const std::map<std::string, std::string>& search_options) {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const hpo::ClassificationTask task = task_with_failures();
  const hpo::SearchOptions o = options(12 * 14);
  const hpo::SearchRun one = hpo::Registry::global().run_search(name, task.problem, o, search_options);
  const hpo::SearchRun many = mpi::run_search(comm, name, task.problem, o, search_options);
  INFO(name << " on " << comm.size() << " ranks: " << many.brief());
  REQUIRE(many.trials.size() == one.trials.size());
  CHECK(one.failures > 0);  // the failure path is exercised
  CHECK(one.failures < static_cast<int>(one.trials.size()));
  CHECK(record_of(many) == record_of(one));
  for (const std::string& r : comm.gather(record_of(many))) CHECK(r == record_of(many));
}

}  // namespace

TEST_CASE("mpi::run_search: random search, the single-process trials on every rank") {
  check_same_as_one_process("random", {{"seed", "3"}});
}

TEST_CASE("mpi::run_search: grid search, the single-process trials on every rank") {
  check_same_as_one_process("grid", {{"points-per-dimension", "4"}});
}

TEST_CASE("mpi::run_search: Bayesian optimization with batches of q, the single-process trials on every rank") {
  for (const char* q : {"1", "3"})
    check_same_as_one_process("bayesian", {{"seed", "2"}, {"initial-points", "4"}, {"q", q}});
}

namespace {

/// A single-process search's journal: every trial as a run store would commit it.
std::vector<hpo::JournalEntry> journal_of(const std::string& name, const hpo::BilevelProblem& problem,
                                          const hpo::SearchOptions& o, const std::map<std::string, std::string>& options) {
  std::vector<hpo::JournalEntry> entries;
  hpo::TrialJournal journal;
  journal.on_trial = [&](const hpo::JournalEntry& e) { entries.push_back(e); };
  const hpo::TrialJournalScope scope(&journal);
  (void)hpo::Registry::global().run_search(name, problem, o, options);
  return entries;
}

std::string entry_bits(const hpo::JournalEntry& e) {
  return std::to_string(e.trial.index) + bits_of(e.trial.theta) +
         bits_of(std::vector<double>{e.trial.val_loss, e.trial.final_train_loss}) + (e.trial.failed ? "F" : "-") +
         e.trial.failure.method + e.trial.failure.reason + std::to_string(e.steps_run);
}

}  // namespace

TEST_CASE("mpi::run_search resumes a run store's trials with any rank count, and journals the new ones on rank 0") {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const hpo::ClassificationTask task = task_with_failures();
  const hpo::SearchOptions o = options(12 * 11);
  for (const auto& [name, search_options] :
       std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"random", {{"seed", "4"}}}, {"bayesian", {{"initial-points", "3"}, {"q", "2"}}}}) {
    INFO(name);
    const hpo::SearchRun one = hpo::Registry::global().run_search(name, task.problem, o, search_options);
    const std::vector<hpo::JournalEntry> all = journal_of(name, task.problem, o, search_options);
    REQUIRE(all.size() == 11);
    hpo::TrialJournal resumed;
    resumed.recorded.assign(all.begin(), all.begin() + 5);  // killed after 5 trials
    std::vector<hpo::JournalEntry> committed;
    if (comm.is_root()) resumed.on_trial = [&](const hpo::JournalEntry& e) { committed.push_back(e); };
    const hpo::SearchRun many = mpi::run_search(comm, name, task.problem, o, search_options, &resumed);
    CHECK(record_of(many) == record_of(one));
    if (comm.is_root()) {
      REQUIRE(committed.size() == 6);
      for (std::size_t i = 0; i < 6; ++i) CHECK(entry_bits(committed[i]) == entry_bits(all[5 + i]));
    }
  }
}

TEST_CASE("mpi::run_search under a budget in seconds: rank 0 decides, and the count replays the same trials") {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const hpo::ClassificationTask task = task_with_failures();
  for (const auto& [name, search_options] : std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"random", {{"seed", "6"}}}, {"bayesian", {{"initial-points", "3"}, {"q", "2"}}}}) {
    INFO(name);
    hpo::SearchOptions timed = options(0);
    timed.budget.seconds = 0.3;
    const hpo::SearchRun many = mpi::run_search(comm, name, task.problem, timed, search_options);
    const std::string mine = record_of(many).substr(record_of(many).find('|', many.method.size() + 1));
    for (const std::string& r : comm.gather(mine)) CHECK(r == mine);  // every rank: the same trials
    REQUIRE(!many.trials.empty());
    CHECK(contains(many.stop_reason, "time budget"));
    // The count, replayed as a trials budget in one process: the same trials, bit for bit.
    hpo::SearchOptions counted = options(0);
    counted.budget.trials = static_cast<std::int64_t>(many.trials.size());
    const hpo::SearchRun one = hpo::Registry::global().run_search(name, task.problem, counted, search_options);
    REQUIRE(one.trials.size() == many.trials.size());
    for (std::size_t i = 0; i < one.trials.size(); ++i) {
      CHECK(bits_of(one.trials[i].theta) == bits_of(many.trials[i].theta));
      CHECK(bits_of(std::vector<double>{one.trials[i].val_loss}) == bits_of(std::vector<double>{many.trials[i].val_loss}));
    }
  }
}

TEST_CASE("mpi::run_search refuses another search and a budget in work, on every rank") {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const hpo::ClassificationTask task = task_with_failures();
  CHECK(contains(error_of([&] { mpi::run_search(comm, "hoag", task.problem, options(24)); }),
                 "'hoag' is not a search spread over ranks"));
  hpo::SearchOptions work = options(0);
  work.budget.work = 100;
  work.budget.work_per_step = 1;
  CHECK(contains(error_of([&] { mpi::run_search(comm, "random", task.problem, work); }), "a budget in engine work"));
}
