// Random and grid search with their trials trained over the ranks (mpi::run_search): the
// single-process SearchRun — every trial's θ, scores and failure record, the best trial and
// the stop reason — at 1, 2 and 4 ranks, the same on every rank; a diverged trial is a failed
// trial there as here.
#include <doctest/doctest.h>

#include <string>

#include <gradhpo/hpo/mpi/search.h>
#include <gradhpo/hpo/registry.h>

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
  hpo::register_builtin_methods();
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

TEST_CASE("mpi::run_search refuses Bayesian optimization and a budget in seconds, on every rank") {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  const hpo::ClassificationTask task = task_with_failures();
  CHECK(contains(error_of([&] { mpi::run_search(comm, "bayesian", task.problem, options(24)); }),
                 "'bayesian' proposes from its results"));
  hpo::SearchOptions seconds = options(0);
  seconds.budget.seconds = 1;
  CHECK(contains(error_of([&] { mpi::run_search(comm, "random", task.problem, seconds); }),
                 "a budget in seconds or work gives no trial count"));
}
