// hpo::solve (solve.h): Options → Summary over the outer loops of outer.h. The same bits as
// run_outer / run_greedy, a run interrupted after any step and resumed from its saved state
// ending with the uninterrupted run's bits (rows, θ, early stopping), every refusal of
// validate(), and early stopping over every row, those before a resume included.
#include "toy.h"
#include "wrapped_methods.h"

#include <cstring>
#include <filesystem>

#include <gradhpo/hpo/solve.h>

#include "../data/temp_dir.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {


bool same_bits(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

/// Rows equal bit for bit in everything but the time they took.
void check_same_rows(const std::vector<hpo::SolveRow>& a, const std::vector<hpo::SolveRow>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].step == b[i].step);
    CHECK(a[i].first_inner == b[i].first_inner);
    CHECK(a[i].theta == b[i].theta);
    CHECK(a[i].hypergradient == b[i].hypergradient);
    CHECK(a[i].val_loss == b[i].val_loss);
    CHECK(a[i].train_loss == b[i].train_loss);
    CHECK(a[i].rejected == b[i].rejected);
    CHECK(a[i].failure.reason == b[i].failure.reason);
    CHECK(a[i].pass == b[i].pass);
    CHECK(a[i].pass_end == b[i].pass_end);
    CHECK(a[i].metrics == b[i].metrics);
  }
}

/// Stops `o` after outer step `stop_after` (the state saved to `file`), then resumes it from the
/// loaded state, and checks the result against the uninterrupted `whole`.
void check_resume(const hpo::BilevelProblem& p, hpo::SolveOptions o, const hpo::Summary& whole, int stop_after,
                  const std::string& file) {
  CAPTURE(stop_after);
  std::filesystem::remove(file);
  o.state_file = file;
  o.on_step = [&](hpo::SolveRow& row, const Tensor&) {
    row.metrics["step_twice"] = 2.0 * row.step;  // the caller's metrics travel with the row
    return row.step < stop_after;
  };
  const hpo::Summary first = hpo::solve(p, o);
  REQUIRE(first.rows.size() == static_cast<std::size_t>(stop_after) + 1);
  CHECK(first.stop_reason == "stopped by the caller");
  const hpo::SolveState state = hpo::load_solve_state(file);
  CHECK(state.next_step == stop_after + 1);
  o.resume = &state;
  o.on_step = [](hpo::SolveRow& row, const Tensor&) {
    row.metrics["step_twice"] = 2.0 * row.step;
    return true;
  };
  const hpo::Summary rest = hpo::solve(p, o);
  check_same_rows(rest.rows, whole.rows);
  CHECK(same_bits(rest.theta, whole.theta));
  CHECK(rest.best_step == whole.best_step);
  CHECK(rest.rejections == whole.rejections);
  CHECK(rest.failures.size() == whole.failures.size());
  // The state after the last step is the uninterrupted run's too.
  const hpo::SolveState last = hpo::load_solve_state(file);
  CHECK(same_bits(last.theta, whole.theta));
  CHECK(last.rows.size() == whole.rows.size());
}

}  // namespace

TEST_CASE("solve: the non-greedy loop by registry name equals run_outer bit for bit") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  const hpo::SolveOptions o = forward_options(4);
  const hpo::Summary s = hpo::solve(task.problem, o);
  const hpo::OuterRun run = hpo::run_outer(task.problem, *hpo::Registry::global().make_offline("test-forward", o.method_options), o.outer);
  REQUIRE(s.rows.size() == run.steps.size());
  for (std::size_t i = 0; i < run.steps.size(); ++i) {
    CAPTURE(i);
    CHECK(s.rows[i].step == static_cast<int>(i));
    CHECK(s.rows[i].theta == run.steps[i].theta.to_vector());
    CHECK(s.rows[i].hypergradient == run.steps[i].hypergradient.to_vector());
    CHECK(s.rows[i].val_loss == run.steps[i].val_loss);
    double norm = 0;
    for (double g : s.rows[i].hypergradient) norm += g * g;
    CHECK(s.rows[i].hypergradient_norm == std::sqrt(norm));
  }
  CHECK(same_bits(s.theta, run.theta));
  CHECK(s.stop_reason == run.stop_reason);
  CHECK(s.method == "test-forward (clip-hessian = 3) + sign");
  // Defaults are not named in what ran.
  hpo::SolveOptions unclipped = forward_options(1);
  unclipped.method_options.clear();
  const hpo::Summary u = hpo::solve(task.problem, unclipped);
  CHECK(u.method == "test-forward + sign");
  CHECK(u.rows[0].theta == s.rows[0].theta);
  // Another method by name: reverse mode takes the same steps (to rounding).
  hpo::SolveOptions rev = forward_options(1);
  rev.method = "test-reverse";
  rev.method_options = {{"policy", "checkpoint"}};
  const hpo::Summary r = hpo::solve(task.problem, rev);
  REQUIRE(r.rows.size() == 1);
  for (std::size_t k = 0; k < r.rows[0].hypergradient.size(); ++k)
    CHECK(r.rows[0].hypergradient[k] == doctest::Approx(u.rows[0].hypergradient[k]).epsilon(1e-10));
  const std::string brief = s.brief();
  CHECK(brief.find("test-forward (clip-hessian = 3) + sign: 4 outer steps, 0 rejected, best L_val") == 0);
  CHECK(brief.find("stopped: max steps (4)") != std::string::npos);
  const std::string report = s.full_report(task.problem.hyper);
  CHECK(report.find("final hyperparameters: lr[0] = ") != std::string::npos);
  CHECK(report.find("best hyperparameters (step " + std::to_string(s.best_step) + "): lr[0] = ") != std::string::npos);
}

TEST_CASE("solve: a non-greedy run stopped after any step and resumed from its state file ends with the same bits") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  TempDir dir;
  hpo::SolveOptions o = forward_options(4);
  o.on_step = [](hpo::SolveRow& row, const Tensor& w) {
    CHECK(w.defined());
    row.metrics["step_twice"] = 2.0 * row.step;
    return true;
  };
  const hpo::Summary whole = hpo::solve(task.problem, o);
  for (int stop_after = 0; stop_after < 3; ++stop_after) check_resume(task.problem, o, whole, stop_after, dir.file("state.bin"));
}

TEST_CASE("solve: with rejected steps, resuming after each one (back to the last good θ) gives the same bits") {
  const TestMethods registered;
  ToySpec spec = schedule_spec();
  spec.lr = 20.0;  // diverges at first (as in test_outer)
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.loss_bound = 3;
  hpo::SolveOptions o = forward_options(5);
  o.outer.step = {1.0, 0.5};
  o.outer.max_rejections = 10;
  o.on_step = [](hpo::SolveRow& row, const Tensor& w) {
    CHECK(w.defined() == !row.rejected);
    row.metrics["step_twice"] = 2.0 * row.step;
    return true;
  };
  const hpo::Summary whole = hpo::solve(task.problem, o);
  REQUIRE(whole.rows.size() == 5);
  REQUIRE(whole.rows[0].rejected);
  REQUIRE(whole.rejections >= 1);
  REQUIRE(whole.failures.size() == static_cast<std::size_t>(whole.rejections));
  CHECK(whole.failures[0].method == "test-forward");
  CHECK(whole.failures[0].trial == 0);
  CHECK(whole.failures[0].hyperparameters.at(0).second == 20.0);
  CHECK(whole.rows[0].hypergradient.empty());
  TempDir dir;
  for (int stop_after = 0; stop_after < 4; ++stop_after) check_resume(task.problem, o, whole, stop_after, dir.file("state.bin"));
}

TEST_CASE("solve: the greedy setting equals run_greedy, and resumes after any update to the same bits") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  hpo::SolveOptions o = forward_options(2);  // 2 passes of 3 segments (T = 60, H = 20)
  o.outer.step = {0.01};
  o.greedy_segment_steps = 20;
  o.on_step = [](hpo::SolveRow& row, const Tensor&) {
    row.metrics["step_twice"] = 2.0 * row.step;
    return true;
  };
  const hpo::Summary whole = hpo::solve(task.problem, o);
  const hpo::OuterRun run =
      hpo::run_greedy(task.problem, 20, *hpo::Registry::global().make_offline("test-forward", o.method_options), o.outer);
  REQUIRE(whole.rows.size() == 6);
  REQUIRE(run.steps.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK(whole.rows[i].first_inner == static_cast<std::int64_t>(20 * (i % 3)));
    CHECK(whole.rows[i].pass == static_cast<int>(i / 3));
    CHECK(whole.rows[i].pass_end == (i % 3 == 2));
    CHECK(whole.rows[i].hypergradient == run.steps[i].hypergradient.to_vector());
    CHECK(whole.rows[i].val_loss == run.steps[i].val_loss);
  }
  CHECK(same_bits(whole.theta, run.theta));
  CHECK(same_bits(whole.final_state.w(), run.final_state.w()));
  CHECK(whole.method == "test-forward (clip-hessian = 3) + sign, greedy (H = 20)");
  TempDir dir;
  for (int stop_after = 0; stop_after < 5; ++stop_after)  // mid-pass, at a pass's end, in the second pass
    check_resume(task.problem, o, whole, stop_after, dir.file("state.bin"));
}

TEST_CASE("solve: early stopping picks the row with the lowest L_val, over every row and across a resume") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  hpo::SolveOptions o = forward_options(6);
  o.outer.step = {0.4, 0.5};  // large steps, so L_val goes up and down
  const hpo::Summary s = hpo::solve(task.problem, o);
  std::size_t lowest = 0;
  for (std::size_t i = 1; i < s.rows.size(); ++i)
    if (s.rows[i].val_loss < s.rows[lowest].val_loss) lowest = i;
  MESSAGE("L_val per step: " << [&] {
    std::string v;
    for (const auto& r : s.rows) v += std::to_string(r.val_loss) + " ";
    return v;
  }());
  CHECK(s.best_step == static_cast<int>(lowest));
  CHECK(s.best_theta.to_vector() == s.rows[lowest].theta);
  // Resumed after the best step: the best is still found among the rows before the resume.
  TempDir dir;
  hpo::SolveOptions cut = o;
  cut.state_file = dir.file("state.bin");
  cut.on_step = [&](hpo::SolveRow& row, const Tensor&) { return row.step < static_cast<int>(lowest) + 1; };
  (void)hpo::solve(task.problem, cut);
  const hpo::SolveState state = hpo::load_solve_state(cut.state_file);
  cut.resume = &state;
  cut.on_step = nullptr;
  const hpo::Summary resumed = hpo::solve(task.problem, cut);
  CHECK(resumed.best_step == s.best_step);
  CHECK(resumed.best_theta.to_vector() == s.best_theta.to_vector());

  // Greedy: only pass ends count (their carried weights are a model trained for all T steps).
  hpo::SolveOptions g = forward_options(3);
  g.outer.step = {0.05};
  g.greedy_segment_steps = 40;  // segments of 40 and 20 steps: every second row ends a pass
  const hpo::Summary gs = hpo::solve(task.problem, g);
  REQUIRE(gs.rows.size() == 6);
  int best = -1;
  for (std::size_t i = 0; i < gs.rows.size(); ++i) {
    CHECK(gs.rows[i].pass_end == (i % 2 == 1));
    if (gs.rows[i].pass_end && (best < 0 || gs.rows[i].val_loss < gs.rows[static_cast<std::size_t>(best)].val_loss))
      best = static_cast<int>(i);
  }
  CHECK(gs.best_step == best);
}

TEST_CASE("solve: validate() refuses bad options before any work, naming what is wrong") {
  const TestMethods registered;
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  const hpo::BilevelProblem& p = task.problem;
  auto refused = [&](const hpo::SolveOptions& o, const std::string& what) {
    CHECK_THROWS_WITH_AS(o.validate(p), doctest::Contains(what.c_str()), Error);
    CHECK_THROWS_WITH_AS(hpo::solve(p, o), doctest::Contains(what.c_str()), Error);
  };
  hpo::SolveOptions o = forward_options(2);
  o.method = "forwrad";
  refused(o, "unknown method 'forwrad'");
  refused(o, "test-forward, test-reverse, test-whole-runs");
  o = forward_options(2);
  o.method_options = {{"clip-hessain", "3"}};
  refused(o, "clip-hessain");
  o.method_options = {{"clip-hessian", "-1"}};
  refused(o, "clip-hessian");
  o = forward_options(2);
  o.outer.step = {0.1, 0.2, 0.3};
  refused(o, "3 step sizes for 2 hyperparameter groups");
  o = forward_options(2);
  o.outer.max_steps = 0;
  refused(o, "max_steps must be >= 1");
  o = forward_options(2);
  o.greedy_segment_steps = 61;
  refused(o, "greedy_segment_steps (the greedy segment H) must be in [1, T = 60], got 61");
  o.greedy_segment_steps = -2;
  refused(o, "must be in [1, T = 60], got -2");
  o = forward_options(2);
  o.method = "test-whole-runs";
  o.greedy_segment_steps = 10;
  refused(o, "test-whole-runs differentiates whole runs only");
  o.greedy_segment_steps = 0;
  CHECK_NOTHROW(o.validate(p));  // non-greedy, it is fine
  o = forward_options(2);
  o.theta0 = Tensor::zeros(Shape{3}, DType::f64);
  refused(o, "θ has 3 entries");

  // A resume state of another method, or of other options, is refused naming both.
  TempDir dir;
  hpo::SolveOptions made = forward_options(1);
  made.state_file = dir.file("state.bin");
  (void)hpo::solve(p, made);
  const hpo::SolveState state = hpo::load_solve_state(made.state_file);
  o = forward_options(3);
  o.resume = &state;
  CHECK_NOTHROW(o.validate(p));  // more steps than the interrupted run planned are fine
  o.method = "test-reverse";
  o.method_options.clear();
  refused(o, "the resume state is of method 'test-forward', not 'test-reverse'");
  o = forward_options(3);
  o.resume = &state;
  o.method_options = {{"clip-hessian", "2"}};
  refused(o, "the resume state was made with the options");
  refused(o, "\"clip-hessian\":2");
  o = forward_options(3);
  o.resume = &state;
  o.outer.kind = hpo::OuterKind::adam;
  refused(o, "\"kind\": \"adam\"");
  o = forward_options(3);
  o.resume = &state;
  o.greedy_segment_steps = 20;
  refused(o, "\"greedy-segment-steps\": 20");
}
