// The progress hook (hpo/progress.h): every long loop reports monotone progress that reaches its
// total, scopes nest, nothing is called without a receiver, and LoopNesting's view of the
// nesting and of the fraction done.
#include "toy.h"
#include "wrapped_methods.h"

#include <map>

#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/progress.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/search/random_search.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

struct Report {
  std::string label;
  std::int64_t done, total;
};

/// Every report of the calls made in `body`, in order.
template <class Body> std::vector<Report> reports_of(Body body) {
  std::vector<Report> seen;
  hpo::ProgressScope scope([&](const char* label, std::int64_t done, std::int64_t total) { seen.push_back({label, done, total}); });
  body();
  return seen;
}

/// Per label: each run of the loop starts at 0, moves up and ends at its total.
void check_monotone(const std::vector<Report>& seen, const std::string& label, std::int64_t expected_runs) {
  std::int64_t runs = 0, last = -1, total = 0;
  for (const Report& r : seen) {
    if (r.label != label) continue;
    CHECK(r.done <= r.total);
    if (r.done == 0) {
      if (last >= 0) CHECK_MESSAGE(last == total, label << ": a run ended at " << last << " of " << total);
      ++runs;
      total = r.total;
    } else {
      CHECK_MESSAGE(r.done > last, label << ": " << last << " then " << r.done);  // checkpointing reports per segment
      CHECK(r.total == total);
    }
    last = r.done;
  }
  CHECK_MESSAGE(last == total, label << ": the last run ended at " << last << " of " << total);
  CHECK_MESSAGE(runs == expected_runs, label);
}

const hpo::Method& forward_method() {
  static const TestForward method;
  return method;
}

ToySpec small_spec() {
  ToySpec spec;
  spec.horizon = 12;
  spec.lr = 0.05;
  spec.lr_blocks = 2;
  spec.learn_weight_decay = false;
  spec.l2 = ToySpec::L2::none;
  spec.example_weights = false;
  spec.momentum = 0.5;
  return spec;
}

}  // namespace

TEST_CASE("progress: the outer loop and every forward pass report monotone progress reaching their totals") {
  const hpo::ClassificationTask task = toy_task(small_spec());
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::sgd;
  o.step = {0.01};
  o.max_steps = 3;
  const std::vector<Report> seen = reports_of([&] { hpo::run_outer(task.problem, forward_method(), o); });
  check_monotone(seen, "outer", 1);
  check_monotone(seen, "forward", 3);
  REQUIRE(!seen.empty());
  CHECK(seen.front().label == "outer");
  CHECK(seen.back().label == "outer");
  CHECK(seen.back().done == 3);
}

TEST_CASE("progress: reverse mode, plain training, greedy segments and random search report too") {
  const hpo::ClassificationTask task = toy_task(small_spec());
  const hpo::BilevelProblem& p = task.problem;
  for (const char* policy : {"store-all", "checkpoint", "exact-reversal"}) {
    const std::vector<Report> seen = reports_of([&] { run_method("reverse", p, p.hyper.initial(), {{"policy", policy}}); });
    check_monotone(seen, "reverse", 1);
    CHECK(seen.back().total == 2 * p.horizon);
  }
  check_monotone(reports_of([&] { hpo::run_inner(p, p.hyper.initial()); }), "train", 1);
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::sgd;
  o.step = {0.01};
  o.max_steps = 2;  // passes of 3 segments of 4 steps
  const std::vector<Report> greedy = reports_of([&] { hpo::run_greedy(p, 4, forward_method(), o); });
  check_monotone(greedy, "greedy", 1);
  CHECK(greedy.back().total == 6);
  check_monotone(greedy, "forward", 6);
  hpo::RandomSearchOptions rs;
  rs.box = {{"lr", 0.01, 0.1, true}};
  rs.budget.inner_steps = 3 * p.horizon;
  const std::vector<Report> search = reports_of([&] { hpo::random_search(p, rs); });
  check_monotone(search, "trial", 1);
  CHECK(search.back().total == 3);
  check_monotone(search, "train", 3);
}

TEST_CASE("progress: scopes nest, and without one nothing is called") {
  hpo::report_progress("nobody", 1, 2);  // no receiver: a no-op
  std::vector<std::string> outer_seen, inner_seen;
  {
    hpo::ProgressScope outer([&](const char* l, std::int64_t, std::int64_t) { outer_seen.push_back(l); });
    hpo::report_progress("a", 0, 1);
    {
      hpo::ProgressScope inner([&](const char* l, std::int64_t, std::int64_t) { inner_seen.push_back(l); });
      hpo::report_progress("b", 0, 1);
    }
    hpo::report_progress("c", 0, 1);
  }
  hpo::report_progress("d", 0, 1);
  CHECK(outer_seen == std::vector<std::string>{"a", "c"});
  CHECK(inner_seen == std::vector<std::string>{"b"});
}

TEST_CASE("progress: LoopNesting follows nested and sibling loops and refines the fraction") {
  hpo::LoopNesting n;
  CHECK(n.report("outer", 0, 4));  // a new outermost loop
  CHECK_FALSE(n.report("forward", 0, 10));
  n.report("forward", 5, 10);
  CHECK(n.describe() == "outer 0/4 · forward 5/10");
  CHECK(n.fraction() == doctest::Approx(0.125));  // (0 + 5/10) / 4
  n.report("forward", 10, 10);
  n.report("train", 2, 4);  // a sibling after the finished forward pass, not inside it
  CHECK(n.describe() == "outer 0/4 · train 2/4");
  n.report("outer", 1, 4);  // closes the loops inside
  CHECK(n.describe() == "outer 1/4");
  CHECK(n.fraction() == doctest::Approx(0.25));
  n.report("outer", 4, 4);
  CHECK(n.fraction() == 1.0);
  CHECK(n.report("evaluate", 0, 2));  // the finished outer loop is replaced: a new outermost loop
  CHECK(n.loops().size() == 1);
  hpo::LoopNesting unknown;
  unknown.report("trial", 3, 0);  // no total (a wall-time budget)
  CHECK(unknown.describe() == "trial 3/?");
  CHECK(unknown.fraction() == 0.0);
}
