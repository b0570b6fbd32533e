// Valid ranges of hyperparameters (hyperparams.h: valid_range, HyperGroup::box), kept by every
// outer optimizer's projection and by the online methods' updates, refused in search boxes; and
// divergence as data: every failure path ends in a FailedTrial with its reason, and an outer loop
// that keeps getting rejected gives up with a status instead of returning a θ as if learned.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <gradhpo/hpo/hoag/hoag.h>
#include <gradhpo/hpo/hoag/register.h>
#include <gradhpo/hpo/online/online.h>
#include <gradhpo/hpo/outer.h>
#include <gradhpo/hpo/search/space.h>
#include <gradhpo/hpo/solve.h>
#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/tasks/experiments.h>
#include <gradhpo/hpo/tasks/register_all.h>
#include <gradhpo/hpo/tasks/schedule_baselines.h>

#include "../data/temp_dir.h"
#include "toy.h"

using namespace gradhpo;
using namespace gradhpo::hpo;
using gradhpo::testing::contains;
using gradhpo::testing::error_of;
using gradhpo::testing::schedule_spec;
using gradhpo::testing::toy_task;
using gradhpo::testing::ToySpec;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// lr (identity, 2 blocks), momentum (identity), weight decay (identity), all starting at 0 as in
/// Micaelli & Storkey's Algorithm 1.
Hyperparameters algorithm1_groups() {
  Hyperparameters h;
  h.add(Hyperparameters::learning_rate(2, 0.0));
  h.add(Hyperparameters::momentum(1, 0.0));
  h.add(Hyperparameters::weight_decay(1, 0.0));
  return h;
}

Tensor vec(std::vector<double> v) { return Tensor::from(v, Shape{static_cast<std::int64_t>(v.size())}, DType::f64); }

/// The same groups with group `name` given `box` (and every group's initial value kept).
Hyperparameters with_box(const Hyperparameters& h, const std::string& name, ValueRange box) {
  Hyperparameters out;
  for (HyperGroup g : h.groups()) {
    g.init.clear();  // the stored group holds both; add() takes one
    if (g.name == name) g.box = box;
    out.add(g);
  }
  return out;
}

/// Every entry of θ is inside its group's range.
bool in_range(const Hyperparameters& h, const Tensor& theta) {
  for (std::int64_t i = 0; i < h.size(); ++i)
    if (!h.range(h.group_of(i)).contains(h.value_at(theta, i))) return false;
  return true;
}

}  // namespace

TEST_CASE("valid ranges: one per kind, initial values and user boxes outside them refused by name") {
  CHECK(valid_range(HyperKind::learning_rate).text() == "[0, inf)");
  CHECK(valid_range(HyperKind::momentum).text() == "[0, 1)");
  CHECK(valid_range(HyperKind::weight_decay).text() == "[0, inf)");
  CHECK(valid_range(HyperKind::l2).text() == "[0, inf)");
  CHECK(valid_range(HyperKind::example_weight).text() == "[0, 1]");
  CHECK(valid_range(HyperKind::loss).text() == "(-inf, inf)");
  CHECK(valid_range(HyperKind::momentum).contains(0.0));
  CHECK_FALSE(valid_range(HyperKind::momentum).contains(1.0));
  CHECK(valid_range(HyperKind::momentum).clamp(1.5) == std::nextafter(1.0, 0.0));
  CHECK(valid_range(HyperKind::learning_rate).clamp(-0.3) == 0.0);
  CHECK(valid_range(HyperKind::learning_rate).clamp(0.3) == 0.3);

  (void)algorithm1_groups();  // Algorithm 1's start at 0 is inside every range
  Hyperparameters h;
  CHECK(contains(error_of([&] { h.add(Hyperparameters::weight_decay(1, -1e-3)); }),
                 "initial value -0.001 is outside the valid range [0, inf) of weight decay"));
  CHECK(contains(error_of([&] { h.add(Hyperparameters::momentum(1, 1.0)); }), "outside the valid range [0, 1) of momentum"));
  CHECK(contains(error_of([&] { h.add(Hyperparameters::learning_rate(3, -0.1)); }), "'lr': initial value -0.1"));
  CHECK(contains(error_of([&] { h.add(Hyperparameters::example_weights(4, 1.5, Transform::identity)); }),
                 "outside the valid range [0, 1] of example weights"));
  HyperGroup l2 = Hyperparameters::l2_global(0.1, Transform::identity);
  l2.init = {-0.1};
  CHECK(contains(error_of([&] { h.add(l2); }), "outside the valid range [0, inf) of L2"));
  // init_raw too: λ = θ for the identity transform.
  HyperGroup raw = Hyperparameters::weight_decay(1, 0.0);
  raw.init.clear();
  raw.init_raw = {-2.0};
  CHECK(contains(error_of([&] { h.add(raw); }), "initial value -2 is outside"));

  // A user's box: inside the kind's range, non-empty, and the initial values inside it.
  HyperGroup lr = Hyperparameters::learning_rate(1, 0.1);
  lr.box = ValueRange::closed(-1, 1);
  CHECK(contains(error_of([&] { h.add(lr); }), "its box [-1, 1] is outside the valid range [0, inf) of learning rate"));
  lr.box = ValueRange::closed(0.5, 0.2);
  CHECK(contains(error_of([&] { h.add(lr); }), "its box [0.5, 0.2] is empty"));
  lr.box = ValueRange::closed(0.2, 0.5);
  CHECK(contains(error_of([&] { h.add(lr); }), "initial value 0.1 is outside its box [0.2, 0.5]"));
  lr.box = ValueRange::closed(0.05, 0.5);
  h.add(lr);
  CHECK(h.range(0).text() == "[0.05, 0.5]");
  // An embedder's own `loss` value has no range until the user gives one.
  HyperGroup own;
  own.name = "temperature";
  own.kind = HyperKind::loss;
  own.init = {-3.0};
  h.add(own);
  own.name = "margin";
  own.box = ValueRange::closed(-1, 1);
  CHECK(contains(error_of([&] { h.add(own); }), "initial value -3 is outside its box [-1, 1]"));
  own.init = {0.5};
  h.add(own);
  CHECK(h.range(2).text() == "[-1, 1]");
  // A transform that cannot reach the box is refused when the group is added.
  HyperGroup sig = Hyperparameters::example_weights(3, 0.5);  // sigmoid: λ in (0, 1)
  sig.name = "w2";
  sig.kind = HyperKind::loss;
  sig.box = ValueRange::closed(2, 3);
  sig.init.clear();
  sig.init_raw = {0.0};
  CHECK(contains(error_of([&] { h.add(sig); }), "'w2': its sigmoid transform cannot reach the lower end of its range [2, 3]"));
}

TEST_CASE("raw ranges: the preimage of the range through the transform, inside it to the last ulp") {
  Hyperparameters h;
  h.add(Hyperparameters::learning_rate(1, 0.1));                          // identity: [0, inf)
  h.add(Hyperparameters::momentum(1, 0.9, Transform::sigmoid));           // in (0, 1) but for rounding
  HyperGroup l2 = Hyperparameters::l2_global(1e-2);                       // exp
  l2.box = ValueRange::closed(1e-3, 1e-1);
  h.add(l2);
  h.add(Hyperparameters::example_weights(2, 0.5));                        // sigmoid into [0, 1]
  CHECK(h.raw_range(0).lower == 0.0);
  CHECK(h.raw_range(0).upper == kInf);
  // sigmoid(θ) rounds to 1 for θ > ~36.7: the projection caps θ where λ is still below 1.
  const ValueRange m = h.raw_range(1);
  CHECK(m.lower == -kInf);
  CHECK(std::isfinite(m.upper));
  CHECK(apply_transform(Transform::sigmoid, m.upper) < 1.0);
  CHECK(apply_transform(Transform::sigmoid, std::nextafter(m.upper, kInf)) == 1.0);
  const ValueRange b = h.raw_range(2);
  CHECK(apply_transform(Transform::exp, b.lower) >= 1e-3);
  CHECK(apply_transform(Transform::exp, std::nextafter(b.lower, -kInf)) < 1e-3);
  CHECK(apply_transform(Transform::exp, b.upper) <= 1e-1);
  CHECK(apply_transform(Transform::exp, std::nextafter(b.upper, kInf)) > 1e-1);
  CHECK(h.raw_range(3).lower == -kInf);  // in range by construction
  CHECK(h.raw_range(3).upper == kInf);
  // project: out-of-range entries to the nearest raw value inside, the others untouched.
  std::vector<double> th = {-0.25, 40.0, std::log(0.5), 3.0, -3.0};
  const std::vector<std::int64_t> moved = h.project(th);
  CHECK(moved == std::vector<std::int64_t>{0, 1, 2});
  CHECK(th[0] == 0.0);
  CHECK(th[1] == m.upper);
  CHECK(th[2] == b.upper);
  CHECK(th[3] == 3.0);
  CHECK(th[4] == -3.0);
  CHECK(contains(error_of([&] { h.check_range(vec({-0.25, 0.0, -3.0, 0.0, 0.0}), "test"); }),
                 "test: hyperparameter lr = -0.25 is outside the valid range [0, inf) of learning rate"));
  CHECK(contains(error_of([&] { h.check_range(vec({0.1, 0.0, -30.0, 0.0, 0.0}), "test"); }),
                 "hyperparameter l2 = 9.35762e-14 is outside its box [0.001, 0.1] of L2"));
  h.check_range(vec({0.1, 0.0, -3.0, 0.0, 0.0}), "test");
}

TEST_CASE("outer optimizers project: negative weight decay to 0 and flagged, momentum kept below 1") {
  const Hyperparameters h = algorithm1_groups();  // θ = (lr0, lr1, momentum, weight decay)
  for (OuterKind kind : {OuterKind::sign, OuterKind::sgd, OuterKind::adam}) {
    const std::string optimizer = outer_name(kind);
    CAPTURE(optimizer);
    OuterOptions o;
    o.kind = kind;
    o.step = {2.0};  // a step of 2 in λ (SGD: with |g| = 1; Adam's first step is ±η)
    OuterOptimizer opt(h, o);
    Tensor th = vec({0.5, 0.5, 0.5, 1e-3});
    // lr0 down by 2 → −1.5; lr1 up; momentum up by 2 → 2.5; weight decay down → −2.
    const std::vector<std::int64_t> clipped = opt.update(th, vec({1.0, -1.0, -1.0, 1.0}));
    CHECK(clipped == std::vector<std::int64_t>{0, 2, 3});
    CHECK(th.at(0) == 0.0);
    CHECK(th.at(1) == doctest::Approx(2.5).epsilon(1e-7));  // Adam: 2 / (1 + ε)
    CHECK(th.at(2) == std::nextafter(1.0, 0.0));
    CHECK(th.at(3) == 0.0);
    CHECK(in_range(h, th));
  }
}

TEST_CASE("an embedder's own loss value with a box, and an exp-transformed L2 with one, are projected onto it") {
  Hyperparameters h;
  HyperGroup own;
  own.name = "temperature";
  own.kind = HyperKind::loss;
  own.init = {0.5};
  own.box = ValueRange::closed(-1, 1);
  h.add(own);
  HyperGroup l2 = Hyperparameters::l2_global(1e-2);  // λ = e^θ
  l2.box = ValueRange::closed(1e-3, 1e-1);
  h.add(l2);
  for (OuterKind kind : {OuterKind::sign, OuterKind::sgd, OuterKind::adam}) {
    const std::string optimizer = outer_name(kind);
    CAPTURE(optimizer);
    OuterOptions o;
    o.kind = kind;
    o.step = {10.0};
    OuterOptimizer opt(h, o);
    Tensor th = h.initial();
    CHECK(opt.update(th, vec({-1.0, -1.0})) == std::vector<std::int64_t>{0, 1});  // both pushed up, out of their boxes
    CHECK(th.at(0) == 1.0);
    CHECK(h.value_at(th, 1) <= 1e-1);
    CHECK(h.value_at(th, 1) == doctest::Approx(1e-1).epsilon(1e-15));
    OuterOptimizer down(h, o);  // a fresh state: Adam's moments and the sign's γ as at the start
    CHECK(down.update(th, vec({1.0, 1.0})).size() == 2);  // and down, out of the other ends
    CHECK(th.at(0) == -1.0);
    CHECK(h.value_at(th, 1) >= 1e-3);
  }
}

TEST_CASE("projection leaves θ's bits alone where nothing is clipped") {
  const Hyperparameters h = algorithm1_groups();
  OuterOptions o;
  o.kind = OuterKind::sgd;
  o.step = {0.1, 0.15, 4e-4};
  OuterOptimizer opt(h, o);
  const std::vector<double> start = {0.3, 0.2, 0.5, 1e-3}, g = {0.7, -0.3, 0.25, 1.5};
  Tensor th = vec(start);
  CHECK(opt.update(th, vec(g)).empty());
  const double steps[] = {0.1, 0.1, 0.15, 4e-4};
  for (std::size_t i = 0; i < 4; ++i) CHECK(th.at(static_cast<std::int64_t>(i)) == start[i] - steps[i] * g[i]);
}

TEST_CASE("a user box is kept by sign, SGD and Adam in the outer loop, and clipped entries are flagged in the rows") {
  ToySpec spec = schedule_spec();  // lr (4 blocks, identity, 0.05), momentum (sigmoid, 0.5)
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.hyper = with_box(task.problem.hyper, "lr", ValueRange::closed(0.045, 0.055));
  task.problem.hyper = with_box(task.problem.hyper, "momentum", ValueRange::closed(0.45, 0.55));
  const Hyperparameters& h = task.problem.hyper;
  register_all_methods();
  for (OuterKind kind : {OuterKind::sign, OuterKind::sgd, OuterKind::adam}) {
    const std::string optimizer = outer_name(kind);
    CAPTURE(optimizer);
    SolveOptions so;
    so.method = "forward";
    so.outer.kind = kind;
    so.outer.step = {kind == OuterKind::sgd ? 50.0 : 0.1, kind == OuterKind::sgd ? 500.0 : 1.0};  // far out of the box
    so.outer.max_steps = 3;
    const Summary s = solve(task.problem, so);
    REQUIRE(s.rows.size() == 3);
    CHECK(s.ok());
    int flagged = 0;
    for (const SolveRow& row : s.rows) {
      CHECK(in_range(h, vec(row.theta)));
      flagged += static_cast<int>(row.clipped.size());
      for (std::int64_t i : row.clipped) CHECK(i < h.size());
    }
    CHECK(flagged > 0);
    CHECK(in_range(h, s.theta));
    CHECK(contains(s.full_report(h), "clipped to range:"));
  }
}

TEST_CASE("the online methods' updates keep θ in the groups' ranges and report what they clipped") {
  register_all_methods();
  ToySpec spec = schedule_spec();
  spec.lr_blocks = 1;
  spec.learn_momentum = false;  // hypergradient descent learns one global rate and nothing else
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.hyper = with_box(task.problem.hyper, "lr", ValueRange::closed(0.049, 0.051));
  for (const char* name : {"online-t1t2", "online-greedy", "hyperdistill", "hypergradient-descent"}) {
    CAPTURE(name);
    OuterOptions outer;
    outer.kind = OuterKind::sgd;
    outer.step = {1e4};
    const auto m = Registry::global().make_online(name, task.problem, outer);
    BilevelState s = m->init();
    int flagged = 0;
    for (int k = 0; k < 12; ++k) {
      const OnlineStep r = m->step(s);
      flagged += static_cast<int>(r.clipped.size());
      CHECK(in_range(task.problem.hyper, s.theta));
    }
    CHECK(flagged > 0);
    // θ₀ outside the range is refused by name.
    CHECK(contains(error_of([&] { (void)m->init(vec({0.3})); }), "lr = 0.3 is outside its box [0.049, 0.051]"));
  }
}

TEST_CASE("search boxes outside a group's valid range or box are refused, naming the dimension") {
  const Hyperparameters h = algorithm1_groups();
  CHECK(contains(error_of([&] { Box(h, {{"weight_decay", -1e-3, 4e-3}}); }),
                 "dimension 0 ('weight_decay'): lower bound -0.001 is outside the valid range [0, inf) of group "
                 "'weight_decay' (weight decay)"));
  CHECK(contains(error_of([&] { Box(h, {{"lr", 0.0, 1.0}, {"momentum", 0.0, 1.0}}); }),
                 "dimension 1 ('momentum'): upper bound 1 is outside the valid range [0, 1)"));
  CHECK(contains(error_of([&] { Box(h, {{"lr[1]", -1.0, 1.0}}); }), "lower bound -1 is outside the valid range"));
  Box(h, {{"lr", 0.0, 1.0}, {"momentum", 0.0, 0.99}, {"weight_decay", 0.0, 4e-3}});  // the schedule experiment's
  const Hyperparameters boxed = with_box(h, "lr", ValueRange::closed(0.0, 0.5));
  CHECK(contains(error_of([&] { Box(boxed, {{"lr", 0.0, 1.0}}); }), "upper bound 1 is outside the box [0, 0.5] of group 'lr'"));
}

TEST_CASE("an outer loop that keeps getting rejected gives up with a status, never a θ as if learned") {
  ToySpec spec = schedule_spec();
  spec.lr = 20.0;  // diverges, and every rejection goes back to it
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.loss_bound = 3;
  register_all_methods();
  SolveOptions so;
  so.method = "forward";
  so.outer.step = {1.0, 0.5};
  so.outer.max_steps = 10;
  so.outer.max_rejections = 2;
  const Summary s = solve(task.problem, so);
  CHECK(s.gave_up);
  CHECK_FALSE(s.ok());
  CHECK(s.rows.size() == 3);
  CHECK(s.rejections == 3);
  CHECK(contains(s.stop_reason, "gave up: 3 diverged inner runs (more than max-rejections = 2)"));
  CHECK(contains(s.brief(), "gave up"));
  REQUIRE(s.failures.size() == 3);
  for (const FailedTrial& f : s.failures) {
    CHECK(f.method == "forward");
    CHECK(f.inner_step >= 0);
    CHECK_FALSE(std::isnan(f.value));
    CHECK(contains(f.reason, "diverged"));
    CHECK(f.hyperparameters.at(0).second == 20.0);
  }
  // Its saved state says the loop ended, and why: a resume takes no more steps and still gave up.
  SolveState saved;
  SolveOptions recorded = so;
  recorded.save = [&saved](const SolveState& st) { saved = st; };
  (void)solve(task.problem, recorded);
  CHECK(saved.stop_reason == s.stop_reason);
  SolveOptions resumed = so;
  resumed.resume = &saved;
  const Summary again = solve(task.problem, resumed);
  CHECK(again.gave_up);
  CHECK(again.rows.size() == 3);
  CHECK(again.stop_reason == s.stop_reason);
  // The greedy loop the same.
  so.greedy_segment_steps = 15;
  const Summary g = solve(task.problem, so);
  CHECK(g.gave_up);
  CHECK(contains(g.stop_reason, "gave up"));
  // A loop that is not rejected that often ends ok.
  so.outer.max_rejections = 100;
  so.outer.max_steps = 2;
  so.greedy_segment_steps = 0;
  const Summary fine = solve(toy_task(schedule_spec()).problem, so);
  CHECK(fine.ok());
}

TEST_CASE("every failure path of the comparison ends in a FailedTrial with its step, value and reason") {
  register_all_methods();
  hpo::ClassificationTask task = toy_task(schedule_spec());
  task.problem.loss_bound = 0.5;  // below the initial loss (about log 3): every run diverges at once
  const BilevelProblem& p = task.problem;
  ComparisonOptions co;
  co.budget.inner_steps = 3 * p.horizon;
  OuterOptions outer;
  outer.step = {1.0, 0.5};
  outer.max_rejections = 1;
  OuterOptions online;  // hypergradient descent's β, on its one learning rate
  online.kind = OuterKind::sgd;
  online.step = {1e-3};
  const std::shared_ptr<const Method> forward = Registry::global().make_offline("forward");
  const Comparison c = compare(p, {offline_entry("outer", forward, outer), greedy_setting_entry("greedy", forward, outer, 4),
                                   hypergradient_descent_schedule_entry(online, 7)},
                               co);
  REQUIRE(c.results.size() == 3);
  for (const MethodResult& r : c.results) {
    CAPTURE(r.method);
    CHECK(r.failures >= 1);
    REQUIRE(static_cast<int>(r.failed_trials.size()) == r.failures);
    for (const FailedTrial& f : r.failed_trials) {
      CHECK(f.method == r.method);
      CHECK(f.inner_step >= 0);         // where training diverged
      CHECK_FALSE(std::isnan(f.value)); // the value that failed (a loss above the bound, or inf/NaN named)
      CHECK_FALSE(f.hyperparameters.empty());
      CHECK_FALSE(f.reason.empty());
    }
  }
  CHECK(contains(c.results[0].stop_reason, "gave up"));
  CHECK(contains(c.json(), "\"failed_trials\""));
}

TEST_CASE("HOAG: an iteration that diverges ends the run as a failed trial, the iterations before it kept") {
  ToySpec spec;
  spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
  spec.example_weights = false;
  spec.l2 = ToySpec::L2::global;
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.loss_bound = 0.5;  // the initial training loss is about log 3
  HoagOptions o;
  o.max_iterations = 3;
  const HoagRun run = run_hoag(task.problem, o);
  REQUIRE(run.failure.has_value());
  CHECK(run.iterations.empty());
  CHECK(run.failure->method == "hoag");
  CHECK(run.failure->trial == 0);
  CHECK(run.failure->inner_step >= 0);
  CHECK(run.failure->value > 0.5);
  CHECK(contains(run.failure->reason, "HOAG iteration 1"));
  CHECK(contains(run.stop_reason, "diverged"));
  Budget b;
  b.inner_steps = 1000;
  const SearchRun s = hoag_within(task.problem, o, b);
  REQUIRE(s.trials.size() == 1);
  CHECK(s.failures == 1);
  CHECK(s.trials[0].failed);
  CHECK(s.trials[0].failure.reason == run.failure->reason);
}

namespace {

/// `bytes` (a SolveState record with an empty stop_reason and a last row with no clipped
/// entries) as an older version wrote it: `drop` bytes cut from the payload's end — 8 for
/// version 2 (no stop_reason: its u64 length), 16 for version 1 (nor the last row's u64 count
/// of clipped entries) — with the header's version and size and the checksum fixed.
std::string as_older_version(const std::string& bytes, std::uint32_t version, std::uint64_t drop) {
  std::string old = bytes.substr(0, bytes.size() - 4 - drop);  // the checksum, then the dropped fields
  std::memcpy(old.data() + 12, &version, 4);
  std::uint64_t size = 0;
  std::memcpy(&size, old.data() + 16, 8);
  size -= drop;
  std::memcpy(old.data() + 16, &size, 8);
  const std::uint32_t crc = detail::crc32_of(old.data(), old.size());
  old.append(reinterpret_cast<const char*>(&crc), 4);
  return old;
}

}  // namespace

TEST_CASE("state: rows keep their clipped entries, and files of versions 1 and 2 still load") {
  gradhpo::testing::TempDir dir;
  const std::string path = dir.path + "/solve.bin";
  SolveState s;
  s.method = "forward";
  s.options_json = "{}";
  s.theta = vec({0.0, 0.1});
  s.previous_theta = s.theta;
  s.next_step = 1;
  SolveRow row;
  row.theta = {-0.5, 0.1};
  row.clipped = {0};
  s.rows = {row};
  s.stop_reason = "max steps (1)";
  save_state(s, path);
  const SolveState now = load_solve_state(path);
  CHECK(now.rows.at(0).clipped == std::vector<std::int64_t>{0});
  CHECK(now.stop_reason == "max steps (1)");

  s.rows[0].clipped.clear();
  s.stop_reason.clear();
  const std::string bytes = solve_state_bytes(s);
  for (const auto& [version, drop] : {std::pair<std::uint32_t, std::uint64_t>{2, 8}, {1, 16}}) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << as_older_version(bytes, version, drop);
    }
    INFO("version " << version);
    const SolveState old = load_solve_state(path);
    REQUIRE(old.rows.size() == 1);
    CHECK(old.rows[0].clipped.empty());
    CHECK(old.rows[0].theta == row.theta);
    CHECK(old.stop_reason.empty());
  }
}

TEST_CASE("the schedule and optimizer experiments' search spaces lie inside the valid ranges, the papers' too") {
  Hyperparameters h;
  h.add(Hyperparameters::learning_rate(4, 0.0));
  h.add(Hyperparameters::momentum(1, 0.0));
  h.add(Hyperparameters::weight_decay(1, 0.0));
  for (const char* name : {"schedule", "optimizer"})
    for (const char* ranges : {"practitioner", "paper"})
      for (const char* sharing : {"auto", "per-block", "shared"}) {
        CAPTURE(name);
        CAPTURE(ranges);
        CAPTURE(sharing);
        SearchSpace space;
        space.ranges = ranges;
        space.sharing = sharing;
        const std::vector<Dimension> box = experiment(name).search_box(h, space);
        CHECK(error_of([&] { Box(h, box); }) == "(no error)");
      }
}
