// The compare harness's methods × seeds over the ranks (mpi::compare_seeds): every row — θ, best
// L_val, test score, trial counts, failures, work — the single-process compare_seeds' bit for bit
// at 1, 2 and 4 ranks, the same on every rank; equal work in two rounds the same way; a method
// that throws is a failed row there as here; rows recorded by a resumed run are kept and not run
// again; a rank whose plan cannot be built fails its rows, never the job.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <gradhpo/hpo/mpi/compare.h>
#include <gradhpo/hpo/tasks/compare_record.h>
#include <gradhpo/hpo/tasks/register_all.h>

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// Seed k's comparison on a toy schedule problem: forward mode in the outer loop, random
/// search, an online method and a method that throws, at 3 runs of T = 8 each (or equal work).
hpo::ComparisonPlan toy_plan(std::uint64_t seed, hpo::Equalise equalise) {
  ToySpec s = schedule_spec();
  s.horizon = 8;
  s.lr_blocks = 2;
  s.batch_seed = 100 + seed;
  s.init_seed = 200 + seed;
  auto task = std::make_shared<hpo::ClassificationTask>(toy_task(s));
  task->problem.loss_bound = 1.5;  // the initial loss is about log 3 = 1.1: large rates diverge
  hpo::ComparisonPlan plan;
  plan.problem = std::shared_ptr<const hpo::BilevelProblem>(task, &task->problem);
  hpo::OuterOptions outer;
  outer.step = {0.1};
  hpo::RandomSearchOptions r;
  r.box = {{"lr", 0.01, 20.0, true}, {"momentum", 0.1, 0.9, false}};  // the larger rates diverge
  r.seed = seed;
  hpo::OuterOptions online;
  online.kind = hpo::OuterKind::sgd;
  online.step = {0.01};
  hpo::CompareMethod throws;
  throws.name = "throws";
  throws.run = [](const hpo::BilevelProblem&, const hpo::Budget&) -> hpo::MethodResult {
    throw Error("this method cannot run here");
  };
  plan.methods = {hpo::offline_entry("forward", "forward", {}, outer), hpo::random_search_method("random", r),
                  hpo::online_entry("online", "online-t1t2", online), throws};
  plan.options.budget.inner_steps = 3 * s.horizon;
  plan.options.equalise = equalise;
  plan.options.evaluate = hpo::scorer(task, formula_data(40, 5000, "formula:test"));
  return plan;
}

/// Everything of a row but its timing (seconds, the cost's seconds, a seconds budget).
std::string record_of(const hpo::MethodResult& r) {
  hpo::MethodResult t = r;
  t.seconds = 0;
  t.cost.seconds = 0;
  t.budget.seconds = 0;
  return hpo::encode_method_result(t) + (r.theta.defined() ? bits_of(r.theta) : "undefined") +
         bits_of(std::vector<double>{r.best_val_loss, r.test.loss, r.test.accuracy, r.work});
}

std::string record_of(const hpo::SeededComparison& s) {
  std::string out;
  for (const hpo::Comparison& c : s.runs) {
    out += c.problem + "|" + std::to_string(c.horizon) + "|" + bits_of(std::vector<double>{c.work_per_step}) + "|";
    for (const hpo::MethodResult& r : c.results) out += record_of(r) + "|";
  }
  return out;
}

void check_same_as_one_process(hpo::Equalise equalise) {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const std::vector<std::uint64_t> seeds = {0, 1, 2};
  const auto plan = [equalise](std::uint64_t seed) { return toy_plan(seed, equalise); };
  const hpo::SeededComparison one = hpo::compare_seeds(seeds, plan);
  const hpo::SeededComparison many = mpi::compare_seeds(comm, seeds, plan);
  INFO(std::string(hpo::equalise_name(equalise)) << " on " << comm.size() << " ranks:\n" << many.runs.front().table());
  REQUIRE(many.runs.size() == seeds.size());
  CHECK(many.seeds == seeds);
  int failures = 0;
  for (std::size_t k = 0; k < seeds.size(); ++k) {
    REQUIRE(many.runs[k].results.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      const hpo::MethodResult &a = many.runs[k].results[i], &b = one.runs[k].results[i];
      CAPTURE(k);
      CAPTURE(b.method);
      CHECK(record_of(a) == record_of(b));
      CHECK(a.budget.describe() == b.budget.describe());
    }
    failures += many.runs[k].results[1].failures;
    const hpo::MethodResult& thrown = many.runs[k].results[3];
    CHECK(thrown.failures == 1);
    CHECK(thrown.stop_reason == "stopped: this method cannot run here");
    CHECK(!thrown.theta.defined());
  }
  CHECK(failures > 0);  // diverged trials are recorded the same way
  CHECK(record_of(many) == record_of(one));
  for (const std::string& r : comm.gather(record_of(many))) CHECK(r == record_of(many));
}

}  // namespace

TEST_CASE("mpi::compare_seeds: methods × seeds over the ranks, the single-process rows bit for bit on every rank") {
  check_same_as_one_process(hpo::Equalise::none);
}

TEST_CASE("mpi::compare_seeds: equal work, the first methods in a round of their own, the same rows") {
  check_same_as_one_process(hpo::Equalise::work);
}

TEST_CASE("mpi::compare_seeds keeps a resumed run's recorded rows and commits each new row once, on rank 0") {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const std::vector<std::uint64_t> seeds = {0, 1};
  const hpo::SeededComparison one =
      hpo::compare_seeds(seeds, [](std::uint64_t seed) { return toy_plan(seed, hpo::Equalise::none); });
  // Seed 1's random search "was recorded" with a marker the run would not give: kept as it is.
  hpo::MethodResult recorded = one.runs[1].results[1];
  recorded.stop_reason = "recorded before the resume";
  std::vector<std::string> committed;  // "k/i" of each on_result call
  const hpo::SeededComparison many = mpi::compare_seeds(comm, seeds, [&](std::uint64_t seed) {
    hpo::ComparisonPlan p = toy_plan(seed, hpo::Equalise::none);
    if (comm.is_root()) {  // only rank 0 holds the run store
      if (seed == 1) p.options.recorded[1] = recorded;
      p.options.on_result = [&committed, seed](std::size_t i, const hpo::MethodResult&) {
        committed.push_back(std::to_string(seed) + "/" + std::to_string(i));
      };
    }
    return p;
  });
  CHECK(many.runs[1].results[1].stop_reason == "recorded before the resume");
  CHECK(record_of(many.runs[0].results[0]) == record_of(one.runs[0].results[0]));
  CHECK(record_of(many.runs[1].results[2]) == record_of(one.runs[1].results[2]));
  if (comm.is_root()) {
    CHECK(committed.size() == 7);  // 2 seeds × 4 methods, less the recorded one
    CHECK(std::find(committed.begin(), committed.end(), "1/1") == committed.end());
  } else {
    CHECK(committed.empty());
  }
  for (const std::string& r : comm.gather(record_of(many))) CHECK(r == record_of(many));
}

TEST_CASE("mpi::compare_seeds: a rank that cannot build its plan fails its rows, naming the rank, and the job goes on") {
  const Communicator comm = Communicator::world();
  hpo::register_all_methods();
  const hpo::SeededComparison s = mpi::compare_seeds(comm, {5}, [&](std::uint64_t seed) {
    if (!comm.is_root()) throw Error("no data on this rank");
    return toy_plan(seed, hpo::Equalise::none);
  });
  REQUIRE(s.runs.size() == 1);
  REQUIRE(s.runs[0].results.size() == 4);
  for (const hpo::MethodResult& r : s.runs[0].results) {
    if (comm.size() == 1) {  // rank 0 ran every row itself
      CHECK(r.stop_reason.find("failed on rank") == std::string::npos);
      continue;
    }
    CHECK(r.failures == 1);
    CHECK(r.stop_reason.find("stopped: failed on rank ") == 0);
    CHECK(r.stop_reason.find(": no data on this rank") != std::string::npos);
  }
  // The checks a comparison makes before any work are thrown on every rank.
  CHECK(contains(error_of([&] {
                   mpi::compare_seeds(comm, {1}, [](std::uint64_t seed) {
                     hpo::ComparisonPlan p = toy_plan(seed, hpo::Equalise::none);
                     p.methods.push_back(p.methods.front());
                     return p;
                   });
                 }),
                 "two methods are called 'forward'"));
}
