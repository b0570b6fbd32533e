// Budgets in compute (search/budget.h, tasks/compare.h): the engine's work count, a budget clock
// injected so that no test depends on wall time, equal-seconds comparisons, exact trial replays,
// and paired seeds with their spread.
//
// The injected clock reads the engine's work count (engine/work_count.h): its "seconds" advance
// with the arithmetic done, by the same amount for the same work on every machine, so a trial of
// a fixed problem costs exactly the same clock time each time.
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <gradhpo/engine/ops.h>
#include <gradhpo/engine/work_count.h>
#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/tasks/register_all.h>

#include "toy.h"

using namespace gradhpo;
using namespace gradhpo::hpo;
using gradhpo::testing::contains;
using gradhpo::testing::toy_alpha_problem;

namespace {

/// A budget clock that reads the engine's work count (2^-20 "seconds" per unit of work: exact in
/// a double for any count a test reaches).
BudgetClock work_clock() {
  return [] { return work_count().total() * 0x1.0p-20; };
}

}  // namespace

TEST_CASE("work count: a matrix product counts m n k multiply-adds, an elementwise op one per element") {
  const Tensor a = Tensor::from(std::vector<double>(6 * 4, 0.5), Shape{6, 4}, DType::f64);
  const Tensor b = Tensor::from(std::vector<double>(4 * 5, 0.25), Shape{4, 5}, DType::f64);
  Tape tape;
  const Var vb = tape.variable(b);
  WorkCount before = work_count();
  const Var c = matmul(a, vb);
  WorkCount used = work_count() - before;
  CHECK(used.multiply_adds == 6 * 5 * 4);
  CHECK(used.elementwise == 0);
  before = work_count();
  (void)(c * c);
  used = work_count() - before;
  CHECK(used.multiply_adds == 0);
  CHECK(used.elementwise == 6 * 5);
}

TEST_CASE("budget in seconds (injected clock): a random search given 100x the seconds runs 100x the trials") {
  const ScopedBudgetClock clock(work_clock());
  const BilevelProblem p = toy_alpha_problem();
  RandomSearchOptions r;
  r.box = {{"alpha", -2, 3}};
  r.budget.trials = 1;
  const double per_trial = random_search(p, r).seconds;  // one trial's clock time
  REQUIRE(per_trial > 0);
  r.budget = Budget{};
  r.budget.seconds = 3 * per_trial;
  const SearchRun one = random_search(p, r);
  r.budget.seconds = 300 * per_trial;
  const SearchRun hundred = random_search(p, r);
  CHECK(one.trials.size() == 3);
  CHECK(hundred.trials.size() == 100 * one.trials.size());
  CHECK(contains(hundred.stop_reason, "time budget"));
  for (const SearchRun* s : {&one, &hundred}) CHECK(s->seconds == doctest::Approx(s->trials.size() * per_trial).epsilon(1e-12));
  // The same draws: the shorter run's trials are the longer one's first.
  for (std::size_t i = 0; i < one.trials.size(); ++i) CHECK(one.trials[i].values == hundred.trials[i].values);

  // A work budget (work_per_step = 1: raw work units) counts alike, with the real clock.
  const ScopedBudgetClock real([] { return 0.0; });  // time stands still: only the work limits
  r.budget = Budget{};
  r.budget.work_per_step = 1;
  r.budget.work = 5 * (per_trial / 0x1.0p-20);
  const SearchRun by_work = random_search(p, r);
  CHECK(by_work.trials.size() == 5);
  CHECK(by_work.work == doctest::Approx(r.budget.work).epsilon(1e-12));
  CHECK(contains(by_work.stop_reason, "work budget"));
}

TEST_CASE("grid search under a seconds budget (injected clock): the first trial's cost sizes the grid") {
  const ScopedBudgetClock clock(work_clock());
  const BilevelProblem p = toy_alpha_problem();
  RandomSearchOptions one;
  one.box = {{"alpha", -2, 3}};
  one.budget.trials = 1;
  const double per_trial = random_search(p, one).seconds;
  GridSearchOptions g;
  g.box = one.box;
  g.budget.seconds = 9 * per_trial;
  const SearchRun run = grid_search(p, g);
  CHECK(run.method == "grid search (9)");
  REQUIRE(run.trials.size() == 9);
  CHECK(run.trials.front().values[0] == -2);  // the lower corner first, then the rest of the grid
  CHECK(run.trials[1].values[0] == doctest::Approx(-2 + 5.0 / 8));
  CHECK(run.trials.back().values[0] == 3);
}

TEST_CASE("exactly N trials: what a seconds budget produced, replayed trial for trial") {
  const ScopedBudgetClock clock(work_clock());
  const BilevelProblem p = toy_alpha_problem();
  RandomSearchOptions r;
  r.box = {{"alpha", -2, 3}};
  r.seed = 7;
  ComparisonOptions o;
  o.budget.seconds = 1e-9;  // at least one trial
  o.budget.trials = 0;
  r.budget.trials = 1;
  o.budget.seconds = 4.5 * random_search(p, r).seconds;
  const Comparison timed = compare(p, {random_search_method("random", r)}, o);
  REQUIRE(timed.results[0].evaluations == 5);
  ComparisonOptions replay;
  replay.budget = replay_budget(timed.results[0]);
  CHECK(replay.budget.describe() == "exactly 5 trials");
  const ScopedBudgetClock frozen([] { return 0.0; });  // another machine's clock: the trial count holds
  const Comparison again = compare(p, {random_search_method("random", r)}, replay);
  CHECK(again.results[0].evaluations == 5);
  CHECK(again.results[0].best_val_loss == timed.results[0].best_val_loss);
  CHECK(again.results[0].hyperparameters == timed.results[0].hyperparameters);
  CHECK(contains(again.results[0].stop_reason, "trial budget"));
}

TEST_CASE("equal seconds (injected clock): every method is charged within one trial of the first method's time") {
  const ScopedBudgetClock clock(work_clock());
  register_all_methods();
  const BilevelProblem p = toy_alpha_problem();
  const std::vector<Dimension> box = {{"alpha", -2, 3}};
  OuterOptions outer;
  outer.kind = OuterKind::sign;
  outer.step = {0.5};
  RandomSearchOptions r;
  r.box = box;
  SearchOptions common;
  common.box = box;
  ComparisonOptions o;
  o.budget.inner_steps = 6 * p.horizon;
  o.equalise = Equalise::seconds;
  const Comparison c = compare(p,
                               {offline_entry("forward mode + sign", "forward", {}, outer), random_search_method("random", r),
                                search_entry("random, by registry", "random", common)},
                               o);
  REQUIRE(c.results.size() == 3);
  const double budget = c.results[0].seconds;
  CHECK(c.results[0].evaluations == 6);
  CHECK(c.work_per_step > 0);
  for (std::size_t i = 1; i < c.results.size(); ++i) {
    const MethodResult& m = c.results[i];
    MESSAGE(m.method << ": " << m.evaluations << " trials, " << m.seconds << " of " << budget);
    CHECK(m.budget.seconds == budget);
    CHECK(m.budget.inner_steps == 0);
    const double per_trial = m.seconds / m.evaluations;  // every trial does the same work
    CHECK(m.seconds >= budget);
    CHECK(m.seconds < budget + per_trial * (1 + 1e-9));
    // A forward-mode outer step costs more than a training run: more trials than outer steps.
    CHECK(m.evaluations > c.results[0].evaluations);
    CHECK(m.work == doctest::Approx(m.evaluations * per_trial / (0x1.0p-20 * c.work_per_step)).epsilon(1e-9));
  }
  // Equal work: a work budget in plain-step equivalents for the first method (its unit measured
  // by the comparison's calibration run), the work it used for the others.
  ComparisonOptions w;
  w.budget.work = 6 * p.horizon * 2.5;
  w.equalise = Equalise::work;
  const ScopedBudgetClock frozen([] { return 0.0; });  // only the work limits
  const Comparison by_work = compare(p, {offline_entry("forward mode + sign", "forward", {}, outer), random_search_method("random", r)}, w);
  CHECK(by_work.results[0].work >= w.budget.work);
  const MethodResult& rw = by_work.results[1];
  CHECK(rw.budget.work == by_work.results[0].work);
  CHECK(rw.work >= rw.budget.work);
  CHECK(rw.work < rw.budget.work + rw.work / rw.evaluations * (1 + 1e-9));
  CHECK(contains(by_work.table(), "equal work: the first method ran"));

  const std::string table = c.table();
  MESSAGE("\n" << table);
  CHECK(contains(table, "equal seconds: the first method ran 240 inner steps, the others its wall time"));
  CHECK(contains(table, "budget given to the others: "));
  CHECK(contains(c.json(), "\"equalise\": \"seconds\""));
}

TEST_CASE("seeds: each of 3 paired seeds' rows equals a single-seed run with that seed, and its mean and sd are printed and stored") {
  register_all_methods();
  // Seed k: the batches and the initialization of the problem, and the search's draws.
  const auto run_one = [](std::uint64_t seed) {
    testing::ToySpec s;
    s.learn_momentum = s.learn_weight_decay = s.example_weights = false;
    s.l2 = testing::ToySpec::L2::global;
    s.lr_blocks = 1;
    s.horizon = 20;
    s.batch_seed = 100 + seed;
    s.init_seed = 200 + seed;
    auto task = std::make_shared<ClassificationTask>(testing::toy_task(s));
    RandomSearchOptions r;
    r.box = {{"lr", 0.01, 1, true}, {"l2", 1e-4, 1e-1, true}};
    r.seed = seed;
    OuterOptions outer;
    outer.step = {0.1};
    ComparisonOptions o;
    o.budget.inner_steps = 3 * s.horizon;
    o.evaluate = scorer(task, testing::formula_data(40, 5000, "formula:test"));
    return compare(task->problem, {offline_entry("forward", "forward", {}, outer), random_search_method("random", r)}, o);
  };
  const std::vector<std::uint64_t> seeds = {0, 1, 2};
  const SeededComparison s = compare_seeds(seeds, run_one);
  REQUIRE(s.runs.size() == 3);
  for (std::size_t m = 0; m < 2; ++m) {
    std::vector<double> acc;
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      const Comparison single = run_one(seeds[i]);
      const MethodResult &a = s.runs[i].results[m], &b = single.results[m];
      CHECK(a.method == b.method);
      CHECK(a.best_val_loss == b.best_val_loss);
      CHECK(a.test.accuracy == b.test.accuracy);
      CHECK(a.test.loss == b.test.loss);
      CHECK(a.hyperparameters == b.hyperparameters);
      CHECK(a.evaluations == b.evaluations);
      acc.push_back(a.test.accuracy);
    }
    const double mean = std::accumulate(acc.begin(), acc.end(), 0.0) / 3;
    double ss = 0;
    for (double x : acc) ss += (x - mean) * (x - mean);
    const SeedSpread spread = s.test_accuracy(m);
    CHECK(spread.n == 3);
    CHECK(spread.mean == doctest::Approx(mean).epsilon(1e-14));
    CHECK(spread.sd == doctest::Approx(std::sqrt(ss / 2)).epsilon(1e-12));
    CHECK(spread.se == doctest::Approx(std::sqrt(ss / 2) / std::sqrt(3.0)).epsilon(1e-12));
  }
  // The seeds differ: not three copies of one run.
  CHECK(s.runs[0].results[1].best_val_loss != s.runs[1].results[1].best_val_loss);
  const std::string table = s.table(), json = s.json();
  MESSAGE("\n" << table);
  CHECK(contains(table, "3 paired seeds (0, 1, 2): mean ± sd over seeds"));
  std::ostringstream forward_mean;
  forward_mean << std::setprecision(4) << 100 * s.test_accuracy(0).mean;
  CHECK(contains(table, forward_mean.str() + " ± "));
  CHECK(contains(json, "\"seeds\": [0, 1, 2]"));
  CHECK(contains(json, "\"summary\": [{\"method\": \"forward\", \"test_accuracy\": {\"n\": 3, \"mean\": "));
  CHECK(contains(json, "\"runs\": [{\"seed\": 0, \"comparison\": {"));
  for (const std::string& line : {table, s.runs[0].table()}) {
    std::istringstream lines(line);
    for (std::string l; std::getline(lines, l);) {
      std::size_t w = 0;
      for (unsigned char ch : l) w += (ch & 0xC0) != 0x80;
      CHECK(w <= 120);
    }
  }
}

TEST_CASE("seed spread: the mean, sample sd and standard error of the finite values") {
  const SeedSpread s = seed_spread({1.0, 2.0, 4.0, std::nan("")});
  CHECK(s.n == 3);
  CHECK(s.mean == doctest::Approx(7.0 / 3));
  CHECK(s.sd == doctest::Approx(std::sqrt(((1 - 7.0 / 3) * (1 - 7.0 / 3) + (2 - 7.0 / 3) * (2 - 7.0 / 3) +
                                           (4 - 7.0 / 3) * (4 - 7.0 / 3)) / 2)));
  CHECK(s.se == doctest::Approx(s.sd / std::sqrt(3.0)));
  const SeedSpread one = seed_spread({0.5});
  CHECK(one.mean == 0.5);
  CHECK(std::isnan(one.sd));
}

TEST_CASE("HOAG under a seconds budget (injected clock): its iterates are scored on the clock, so it stops in time") {
  const ScopedBudgetClock clock(work_clock());
  const BilevelProblem p = toy_alpha_problem();
  HoagOptions o;
  o.max_iterations = 1000;
  o.theta_min = -2;
  o.theta_max = 3;
  // One scoring (T training steps from w₀) on the injected clock.
  const double before = budget_clock_now();
  (void)run_inner(p, p.hyper.initial());
  const double score = budget_clock_now() - before;
  ComparisonOptions co;
  co.budget.seconds = 12 * score;
  const Comparison c = compare(p, {hoag_method("HOAG", o)}, co);
  const MethodResult& r = c.results.at(0);
  MESSAGE(r.evaluations << " iterates in " << r.seconds << " of " << co.budget.seconds << " (one scoring: " << score << ")");
  REQUIRE(r.evaluations >= 3);
  REQUIRE(r.evaluations < 1000);
  // Every iterate was scored before the budget was read: it stops within one iteration (its
  // passes and its scoring) of the budget. Scoring every iterate after the loop overshot by
  // all their scorings (evaluations × score).
  const double per_iterate = r.seconds / r.evaluations;
  CHECK(r.seconds >= co.budget.seconds);
  CHECK(r.seconds < co.budget.seconds + 2 * per_iterate);
}
