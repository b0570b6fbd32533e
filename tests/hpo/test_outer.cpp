// The outer loop (sign, SGD and Adam outer optimizers; non-greedy and greedy), its handling of
// diverging inner runs, hypervariance, and the errors a user meets.
#include "toy.h"

#include <cmath>
#include "wrapped_methods.h"

#include <gradhpo/hpo/eval/diagnostics.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/methods/reverse.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

const hpo::Method& forward_method() {
  static const TestForward method;
  return method;
}

}  // namespace

TEST_CASE("sign optimizer: the step halves when a hypergradient's sign flips (Algorithm 1)") {
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(2, 0.1));
  hpo::OuterOptions o;
  o.step = {0.1};
  hpo::OuterOptimizer opt(h, o);
  Tensor th = h.initial();
  opt.update(th, Tensor::from({1.0, -2.0}, Shape{2}, DType::f64));  // θ − γ sgn: (0.0, 0.2)
  CHECK(th.at(0) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(th.at(1) == doctest::Approx(0.2).epsilon(1e-15));
  opt.update(th, Tensor::from({-5.0, -1.0}, Shape{2}, DType::f64));  // entry 0 flips: γ₀ = 0.05
  CHECK(opt.state().step[0] == 0.05);
  CHECK(opt.state().step[1] == 0.1);
  CHECK(th.at(0) == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(th.at(1) == doctest::Approx(0.3).epsilon(1e-15));
}

TEST_CASE("non-greedy outer loop: forward mode + sign optimizer lowers the validation loss") {
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  hpo::OuterOptions o;
  // γ for the learning rates, γ for momentum's raw (logit) value. (γ = 0.1 would step the rates
  // of 0.05 to −0.05, which the projection onto lr >= 0 stops at 0.)
  o.step = {0.02, 0.5};
  o.max_steps = 6;
  const hpo::OuterRun run = hpo::run_outer(task.problem, forward_method(), o);
  REQUIRE(run.steps.size() == 6);
  const double first = run.steps.front().val_loss;
  const double last = hpo::run_inner(task.problem, run.theta).val_loss;
  MESSAGE("validation loss " << first << " -> " << last);
  CHECK(last < first);
  for (const hpo::OuterStep& s : run.steps) CHECK_FALSE(s.rejected);
}

TEST_CASE("greedy setting: updates every H steps with the weights carried on") {
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  hpo::OuterOptions o;
  o.step = {0.02, 0.2};
  o.max_steps = 2;  // two passes over the horizon
  const hpo::OuterRun run = hpo::run_greedy(task.problem, 15, forward_method(), o);
  REQUIRE(run.steps.size() == 8);  // 60 / 15 segments per pass
  CHECK(run.steps[1].first_inner == 15);
  CHECK(run.steps[4].first_inner == 0);
  // A segment's hypergradient holds its start fixed: it is the forward-mode one of that slice.
  hpo::Segment seg;
  seg.first = 0;
  seg.steps = 15;
  const hpo::Hypergradient a = run_method("forward", task.problem, run.steps[0].theta, {}, &seg);
  const hpo::Hypergradient b = run_method("reverse", task.problem, run.steps[0].theta, {}, &seg);
  CHECK(rel(a.d_theta, run.steps[0].hypergradient) <= 1e-12);
  CHECK(rel(a.d_theta, b.d_theta) <= 1e-10);
}

TEST_CASE("a diverging inner run is rejected: theta goes back, steps halve, the message says where") {
  ToySpec spec = schedule_spec();
  spec.lr = 20.0;  // far too large with momentum 0.5 on this problem
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.loss_bound = 3;  // the initial loss is about log 3
  hpo::OuterOptions o;
  o.step = {1.0, 0.5};
  o.max_steps = 3;
  o.max_rejections = 10;
  const hpo::OuterRun run = hpo::run_outer(task.problem, forward_method(), o);
  REQUIRE_FALSE(run.steps.empty());
  CHECK(run.steps[0].rejected);
  CHECK(run.steps[0].message.find("outer step 0, inner step") != std::string::npos);
  CHECK(run.steps[0].message.find("lr[0] = 20") != std::string::npos);
  // The rejection is a FailedTrial: the method, the outer and inner step, the hyperparameters.
  const hpo::FailedTrial& f = run.steps[0].failure;
  CHECK(f.method == "test-forward");
  CHECK(f.trial == 0);
  CHECK(f.inner_step >= 0);
  CHECK(run.steps[0].message.find("inner step " + std::to_string(f.inner_step) + ":") != std::string::npos);
  REQUIRE(f.hyperparameters.size() == 5);
  CHECK(f.hyperparameters[0].first == "lr[0]");
  CHECK(f.hyperparameters[0].second == 20.0);
  CHECK(f.reason.find("inner training diverged") != std::string::npos);
  CHECK(f.brief().find("test-forward, step 0, inner step") == 0);
  // The value that failed: a training loss above the bound of 3, or one that is not finite.
  REQUIRE_FALSE(std::isnan(f.value));  // NaN would mean "unknown"
  CHECK(std::abs(f.value) > task.problem.loss_bound);
  if (std::isfinite(f.value)) CHECK(f.reason.find("exceeds the bound") != std::string::npos);
  CHECK(run.rejections >= 1);
  for (const hpo::OuterStep& s : run.steps)
    if (!s.rejected) CHECK(hpo::first_non_finite(s.hypergradient) < 0);
}

TEST_CASE("clear errors: NaN hyperparameters, a wrong theta, exact reversal with Adam, bad outer options") {
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  Tensor th = task.problem.hyper.initial();
  th.flat_slice(2, 1).fill(NAN);
  CHECK_THROWS_WITH_AS(run_method("forward", task.problem, th), doctest::Contains("hyperparameter lr[2] is nan"), Error);
  CHECK_THROWS_WITH_AS(run_method("reverse", task.problem, Tensor::zeros(Shape{3}, DType::f64)),
                       doctest::Contains("θ has 3 entries"), Error);
  hpo::OuterOptions bad;
  bad.step = {0.1, 0.2, 0.3};
  CHECK_THROWS_WITH_AS(hpo::OuterOptimizer(task.problem.hyper, bad), doctest::Contains("3 step sizes for 2"), Error);
  hpo::Hyperparameters h;
  CHECK_THROWS_WITH_AS(h.add(hpo::Hyperparameters::l2_global(-1.0)), doctest::Contains("must start in (0, inf)"), Error);
  hpo::HyperGroup g = hpo::Hyperparameters::l2_global(0.1);
  g.blocks = 4;
  CHECK_THROWS_WITH_AS(h.add(g), doctest::Contains("only optimizer-defining hyperparameters"), Error);
}

TEST_CASE("hypervariance and sign fluctuation: a shared schedule against one value per step") {
  auto factory_for = [](std::int64_t blocks) {
    return [blocks](hpo::Factor f, int index) {
      ToySpec spec = schedule_spec();
      spec.lr_blocks = blocks;
      spec.learn_momentum = false;
      if (f == hpo::Factor::train_order) spec.batch_seed = static_cast<std::uint64_t>(index);
      if (f == hpo::Factor::init_weights) spec.init_seed = static_cast<std::uint64_t>(index);
      return toy_task(spec).problem;
    };
  };
  const std::vector<hpo::Factor> factors = {hpo::Factor::train_order, hpo::Factor::init_weights,
                                            hpo::Factor::hyperparameters};
  const auto& forward = forward_method();
  const auto shared = hpo::hypervariance(factory_for(2), factory_for(2)(hpo::Factor::train_order, 0).hyper.initial(),
                                         forward, 6, factors);
  const auto per_step = hpo::hypervariance(factory_for(60), factory_for(60)(hpo::Factor::train_order, 0).hyper.initial(),
                                           forward, 6, factors);
  REQUIRE(shared.size() == 3);
  for (std::size_t i = 0; i < shared.size(); ++i) {
    MESSAGE(std::string(hpo::factor_name(shared[i].factor)) << ": hypervariance shared " << shared[i].spread.mean_hypervariance
                                               << " vs per step " << per_step[i].spread.mean_hypervariance
                                               << "; sign fluctuation " << shared[i].spread.mean_sign_fluctuation
                                               << " vs " << per_step[i].spread.mean_sign_fluctuation);
    CHECK(shared[i].spread.mean_sign_fluctuation >= 0);
    CHECK(shared[i].spread.mean_sign_fluctuation <= 0.5);
  }
  // Batch order is the factor sharing is meant to average out.
  CHECK(shared[0].spread.mean_hypervariance < per_step[0].spread.mean_hypervariance);
  // Statistics by hand on three samples: mean 2, std √(2/3), one negative sign in three.
  const hpo::HypergradientSpread s = hpo::spread_of({{1.0}, {2.0}, {3.0}});
  CHECK(s.mean[0] == doctest::Approx(2.0));
  CHECK(s.std[0] == doctest::Approx(std::sqrt(2.0 / 3.0)));
  CHECK(hpo::spread_of({{1.0}, {-2.0}, {3.0}}).sign_fluctuation[0] == doctest::Approx(1.0 / 3.0));
}

TEST_CASE("greedy: a run stopped after any update and resumed from its OuterStep ends with the same bits") {
  const hpo::ClassificationTask task = toy_task(schedule_spec());
  const hpo::BilevelProblem& p = task.problem;
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::sign;
  o.step = {0.01};
  o.max_steps = 2;  // 2 passes of 3 segments (T = 60, H = 20)
  const hpo::OuterRun whole = hpo::run_greedy(p, 20, forward_method(), o);
  REQUIRE(whole.steps.size() == 6);
  for (int stop_after : {0, 2, 3}) {  // mid-pass, at a pass's end, mid-pass of the second
    CAPTURE(stop_after);
    hpo::OuterResume from;
    hpo::run_greedy(p, 20, forward_method(), o, Tensor(), [&](const hpo::OuterStep& s, const hpo::OuterOptimizer& opt) {
      if (s.step < stop_after) return true;
      from.theta = s.next_theta;
      from.state = opt.state();
      from.next_step = s.step + 1;
      from.rejections = s.rejections;
      from.pass = s.next_pass;
      from.first_inner = s.next_first;
      from.start = s.next_start;
      return false;
    });
    CHECK(from.start.parts.empty() == (stop_after == 2));  // a new pass starts from S_0
    const hpo::OuterRun rest = hpo::run_greedy(p, 20, forward_method(), o, Tensor(), nullptr, &from);
    REQUIRE(rest.steps.size() == 6 - static_cast<std::size_t>(stop_after) - 1);
    CHECK(rest.steps.front().step == stop_after + 1);
    CHECK(rest.theta.to_vector() == whole.theta.to_vector());  // bit for bit
    CHECK(rest.steps.back().val_loss == whole.steps.back().val_loss);
  }
}
