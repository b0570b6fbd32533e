// Online and approximate hypergradients (T1–T2 and its DARTS form, generalized greedy, DrMAD,
// HyperDistill, hypergradient descent), each against its own definition, the exactness ladder,
// check_hypergradient, and the bilevel state's save and resume.
#include "toy.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include <gradhpo/engine/ops.h>
#include <gradhpo/hpo/methods/drmad.h>
#include <gradhpo/hpo/methods/forward.h>
#include <gradhpo/hpo/methods/one_step.h>
#include <gradhpo/hpo/eval/ladder.h>
#include <gradhpo/hpo/online/greedy.h>
#include <gradhpo/hpo/online/hyperdistill.h>
#include <gradhpo/hpo/online/hypergradient_descent.h>
#include <gradhpo/hpo/online/t1t2.h>
#include <gradhpo/hpo/methods/reverse.h>
#include <gradhpo/hpo/tensor_math.h>

#include "../data/temp_dir.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

hpo::OuterOptions sgd_outer(double lr) {
  hpo::OuterOptions o;
  o.kind = hpo::OuterKind::sgd;
  o.step = {lr};
  return o;
}

ToySpec l2_spec() {
  ToySpec spec;
  spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
  spec.l2 = ToySpec::L2::per_tensor;
  spec.example_weights = true;
  spec.horizon = 40;
  return spec;
}

/// The toy bilevel problem: L_train = (w − α)², L_val = α w − 2α + 1; w*(α) = α and the
/// hypergradient of the converged problem is 2(α − 1).
hpo::BilevelProblem toy_bilevel(double alpha, std::int64_t T, double lr) {
  hpo::BilevelProblem p;
  hpo::HyperGroup g;
  g.name = "alpha";
  g.kind = hpo::HyperKind::loss;
  g.init = {alpha};
  p.hyper.add(g);
  p.train_loss = [](const Var& w, const hpo::HyperValues& h, std::int64_t) { return sum(square(w - h["alpha"])); };
  p.val_loss = [](const Var& w, const hpo::HyperValues& h) {
    const Var a = h["alpha"];
    return sum(a * w - 2.0 * a + 1.0);
  };
  p.optimizer.lr = nn::Schedule::constant(lr);
  p.horizon = T;
  p.w0 = Tensor::from({0.0}, Shape{1}, DType::f64);
  return p;
}

}  // namespace

TEST_CASE("T1-T2 is the exact hypergradient of a one-step horizon, from the online state") {
  const hpo::ClassificationTask task = toy_task(l2_spec());
  hpo::T1T2 method(task.problem, sgd_outer(0.05));
  hpo::BilevelState s = method.init();
  method.run(s, 7);
  const Tensor h = method.hypergradient(s);
  hpo::Segment seg;
  seg.start = s.inner;
  seg.first = s.step;
  seg.steps = 1;
  const hpo::Hypergradient one = run_method("reverse", task.problem, s.theta, {}, &seg);
  CHECK(rel(h, one.d_theta) <= 1e-10);
  // ... and forward mode over the same one step (tangents instead of adjoints) agrees.
  CHECK(rel(h, run_method("forward", task.problem, s.theta, {}, &seg).d_theta) <= 1e-10);
}

TEST_CASE("DARTS: the weight-space difference converges to the exact mixed term as O(eps^2)") {
  const hpo::ClassificationTask task = toy_task(l2_spec());
  const hpo::BilevelProblem& p = task.problem;
  const Tensor th = p.hyper.initial();
  hpo::Unroll u(p, th);
  hpo::InnerState s = u.initial_state();
  for (std::int64_t t = 0; t < 5; ++t) s = u.step(s, u.gradient(s.w(), t).grad, t);
  const Tensor g = u.gradient(s.w(), 5).grad;
  const hpo::InnerState after = u.step(s, g, 5);
  const Tensor exact = hpo::detail::one_step_hypergradient(u, s, g, after, 5, 0);
  std::vector<double> err;
  for (double r : {0.4, 0.2, 0.1, 0.05}) err.push_back(rel(hpo::detail::one_step_hypergradient(u, s, g, after, 5, r), exact));
  for (std::size_t i = 1; i < err.size(); ++i) {
    const double slope = std::log2(err[i - 1] / err[i]);
    MESSAGE("radius halved: error " << err[i - 1] << " -> " << err[i] << ", slope " << slope);
    CHECK(slope > 1.8);
    CHECK(slope < 2.2);
  }
  CHECK(err.back() < 1e-3);
}

TEST_CASE("DrMAD equals exact reverse mode where the trajectory is a straight line, not elsewhere") {
  // L_train = λ c·w: the gradient λ c is constant, so plain SGD moves w along a line.
  hpo::BilevelProblem p;
  hpo::HyperGroup g;
  g.name = "scale";
  g.kind = hpo::HyperKind::loss;
  g.init = {0.7};
  p.hyper.add(g);
  p.hyper.add(hpo::Hyperparameters::learning_rate(3, 0.1));
  const Tensor c = Tensor::from({0.5, -1.0, 2.0}, Shape{3}, DType::f64);
  const Tensor target = Tensor::from({1.0, 0.5, -0.25}, Shape{3}, DType::f64);
  p.train_loss = [c](const Var& w, const hpo::HyperValues& h, std::int64_t) {
    return reshape(h["scale"], Shape{}) * dot(w, w.tape().constant(c));
  };
  p.val_loss = [target](const Var& w, const hpo::HyperValues&) { return 0.5 * sum(square(w - target)); };
  p.horizon = 30;
  p.w0 = Tensor::from({0.1, 0.2, 0.3}, Shape{3}, DType::f64);
  const Tensor th = p.hyper.initial();
  // A learning-rate schedule bends the path's speed but not its line; DrMAD assumes uniform speed,
  // so compare on one block.
  hpo::BilevelProblem uniform = p;
  uniform.hyper = hpo::Hyperparameters();
  uniform.hyper.add(g);
  uniform.hyper.add(hpo::Hyperparameters::learning_rate(1, 0.1));
  const Tensor thu = uniform.hyper.initial();
  const hpo::Hypergradient dru = run_method("drmad", uniform, thu), rvu = run_method("reverse", uniform, thu);
  CHECK(rel(dru.d_theta, rvu.d_theta) <= 1e-10);
  CHECK(rel(dru.d_w0, rvu.d_w0) <= 1e-10);
  // On a curved trajectory it is an approximation.
  const hpo::ClassificationTask task = toy_task(l2_spec());
  const Tensor tt = task.problem.hyper.initial();
  const double e = rel(run_method("drmad", task.problem, tt).d_theta, run_method("reverse", task.problem, tt).d_theta);
  MESSAGE("DrMAD on the toy classifier: relative error " << e);
  CHECK(e > 1e-4);
}

TEST_CASE("generalized greedy with gamma -> 0 is T1-T2, and the top-k rule moves only k entries") {
  const hpo::ClassificationTask task = toy_task(l2_spec());
  const Tensor th = task.problem.hyper.initial();
  const Tensor one_step = run_method("t1t2", task.problem, th).d_theta;
  CHECK(rel(run_method("greedy", task.problem, th, {{"gamma", "0"}}).d_theta, one_step) <= 1e-12);
  CHECK(rel(run_method("greedy", task.problem, th, {{"gamma", "1e-9"}}).d_theta, one_step) <= 1e-7);
  hpo::GreedyOptions go;
  go.gamma = 0;
  hpo::GeneralizedGreedy greedy(task.problem, sgd_outer(0.05), go);
  hpo::T1T2 t1t2(task.problem, sgd_outer(0.05));
  hpo::BilevelState a = greedy.init(), b = t1t2.init();
  for (int k = 0; k < 5; ++k) {
    const hpo::OnlineStep ra = greedy.step(a), rb = t1t2.step(b);
    CHECK(rel(ra.hypergradient, rb.hypergradient) <= 1e-12);
  }
  go.gamma = 0.5;
  go.top_k = 3;
  hpo::GeneralizedGreedy topk(task.problem, sgd_outer(0.05), go);
  hpo::BilevelState s = topk.init();
  const Tensor before = s.theta.clone();
  const hpo::OnlineStep r = topk.step(s);
  int moved = 0;
  for (std::int64_t i = 0; i < s.theta.numel(); ++i) moved += s.theta.at(i) != before.at(i);
  CHECK(moved == 3);
  for (std::int64_t i : hpo::top_k_indices(r.hypergradient, 3)) CHECK(s.theta.at(i) != before.at(i));
}

TEST_CASE("hypergradient descent: Baydin's identity for plain SGD, and the safe parameterization") {
  ToySpec spec;
  spec.learn_lr = spec.learn_momentum = spec.learn_weight_decay = false;
  spec.l2 = ToySpec::L2::none;
  spec.example_weights = false;
  spec.momentum = 0;
  spec.weight_decay = 0;  // plain SGD: the identity has no μ w term
  hpo::ClassificationTask task = toy_task(spec);
  task.problem.hyper.add(hpo::hypergradient_descent_group(0.1, /*safe=*/false));
  task.problem.optimizer.momentum = 0;
  hpo::HypergradientDescent hd(task.problem, sgd_outer(1e-3));
  hpo::BilevelState s = hd.init();
  hd.step(s);
  hd.step(s);
  // ∂f(w_t)/∂α_{t−1} = −∇f(w_t)·∇f(w_{t−1}): recompute both gradients independently.
  hpo::BilevelState probe = s;
  hpo::Unroll u(task.problem, s.theta);
  const Tensor g_now = u.gradient(s.inner.w(), 2).grad;
  hpo::BilevelState s1 = hd.init();
  hd.step(s1);
  const Tensor g_prev = hpo::Unroll(task.problem, s1.theta).gradient(s1.inner.w(), 1).grad;
  const double want = -hpo::dot(g_now, g_prev);
  const double got = hd.hypergradient(probe).at(0);
  CHECK(std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want)));

  // A large β would drive the plain learning rate negative: the update's projection stops it at
  // 0, the end of a learning rate's valid range, and says so; the safe one stays positive.
  hpo::ClassificationTask plain_task = toy_task(spec), safe_task = toy_task(spec);
  plain_task.problem.hyper.add(hpo::hypergradient_descent_group(0.01, false));
  safe_task.problem.hyper.add(hpo::hypergradient_descent_group(0.01, true));
  plain_task.problem.optimizer.momentum = safe_task.problem.optimizer.momentum = 0;
  hpo::HypergradientDescent plain(plain_task.problem, sgd_outer(50.0)), safe(safe_task.problem, sgd_outer(50.0));
  hpo::BilevelState ps = plain.init(), ss = safe.init();
  double min_plain = 1, min_safe = 1;
  int clipped = 0;
  for (int k = 0; k < 30; ++k) {
    clipped += static_cast<int>(plain.step(ps).clipped.size());
    safe.step(ss);
    min_plain = std::min(min_plain, plain_task.problem.hyper.value_at(ps.theta, 0));
    min_safe = std::min(min_safe, safe_task.problem.hyper.value_at(ss.theta, 0));
  }
  MESSAGE("smallest learning rate: plain " << min_plain << ", safe " << min_safe);
  CHECK(min_plain == 0);
  CHECK(clipped > 0);
  CHECK(min_safe > 0);
  // Adam and momentum SGD run through the same code.
  ToySpec adam = spec;
  adam.optimizer = nn::OptimizerKind::adam;
  hpo::ClassificationTask adam_task = toy_task(adam);
  adam_task.problem.hyper.add(hpo::hypergradient_descent_group(0.01, true));
  hpo::HypergradientDescent adam_hd(adam_task.problem, sgd_outer(1e-4));
  hpo::BilevelState as = adam_hd.init();
  adam_hd.run(as, 10);
  CHECK(std::isfinite(as.theta.at(0)));
  // Other groups are refused, naming them.
  const hpo::ClassificationTask l2 = toy_task(l2_spec());
  CHECK_THROWS_WITH_AS(hpo::HypergradientDescent(l2.problem, sgd_outer(0.1)),
                       doctest::Contains("cannot learn hyperparameter group 'l2'"), Error);
}

TEST_CASE("HyperDistill: EMA coefficients match their closed form, and the scale fit recovers a planted scale") {
  for (double gamma : {0.5, 0.9, 0.99}) {
    double ema = 0, num = 0, den = 0;
    for (std::int64_t t = 1; t <= 60; ++t) {
      const double w_prev = std::sin(0.3 * static_cast<double>(t - 1));  // w_{t−1}
      ema = t == 1 ? w_prev : hpo::ema_coefficient(gamma, t) * ema + (1 - hpo::ema_coefficient(gamma, t)) * w_prev;
      num = gamma * num + w_prev;  // Σ_{s<t} γ^{t−1−s} w_s
      den = gamma * den + 1;
      REQUIRE(std::abs(ema - num / den) <= 1e-12);
      CHECK(std::abs(hpo::distill_scale(gamma, t, 1.0) - den) <= 1e-9 * den);
    }
  }
  std::vector<Tensor> x, y;
  for (int k = 0; k < 8; ++k) {
    std::vector<double> xv, yv;
    for (int i = 0; i < 20; ++i) {
      const double xi = std::sin(1.7 * k + 0.3 * i);
      xv.push_back(xi);
      yv.push_back(2.5 * xi + 1e-3 * std::cos(5.0 * k + i));
    }
    x.push_back(Tensor::from(xv, Shape{20}, DType::f64));
    y.push_back(Tensor::from(yv, Shape{20}, DType::f64));
  }
  CHECK(std::abs(hpo::fit_distillation_scale(x, y) - 2.5) < 1e-3);
  // Online, the averaged weights are the γ-weighted mean of the weights the run visited.
  const hpo::ClassificationTask task = toy_task(l2_spec());
  hpo::HyperDistillOptions ho;
  ho.gamma = 0.8;
  ho.fit_every = 10;
  hpo::HyperDistill hd(task.problem, sgd_outer(0.01), ho);
  hpo::BilevelState s = hd.init();
  std::vector<Tensor> ws;
  for (int k = 0; k < 12; ++k) {
    ws.push_back(s.inner.w().clone());
    hd.step(s);
  }
  Tensor mean = Tensor::zeros(ws[0].shape(), DType::f64);
  double z = 0;
  for (std::size_t k = 0; k < ws.size(); ++k) {
    const double wgt = std::pow(0.8, static_cast<double>(ws.size() - 1 - k));
    hpo::axpy(mean, wgt, ws[k]);
    z += wgt;
  }
  for (std::int64_t i = 0; i < mean.numel(); ++i) mean.flat_slice(i, 1).fill(mean.at(i) / z);
  CHECK(rel(s.extra.at("w_star"), mean) <= 1e-12);
  CHECK(s.extra.at("theta_fit").at(2) > 0);  // one fit happened, at step 10
}

TEST_CASE("the bilevel state saves and resumes to the same bits, and corrupt files are refused") {
  const hpo::ClassificationTask task = toy_task(l2_spec());
  hpo::HyperDistillOptions ho;
  ho.fit_every = 5;
  hpo::HyperDistill method(task.problem, sgd_outer(0.02), ho);
  hpo::BilevelState s = method.init();
  method.run(s, 8);
  TempDir dir;
  const std::string path = dir.path + "/state.bin";
  hpo::save_state(s, path);
  hpo::BilevelState straight = s;
  method.run(straight, 9);
  hpo::BilevelState resumed = hpo::load_state(path);
  method.run(resumed, 9);
  REQUIRE(resumed.step == straight.step);
  CHECK(std::memcmp(resumed.theta.raw(), straight.theta.raw(), straight.theta.nbytes()) == 0);
  CHECK(std::memcmp(resumed.inner.w().raw(), straight.inner.w().raw(), straight.inner.w().nbytes()) == 0);
  CHECK(resumed.val_losses == straight.val_losses);

  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << b;
  };
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  write(flipped);
  CHECK_THROWS_WITH_AS(hpo::load_state(path), doctest::Contains("corrupt (checksum mismatch)"), Error);
  write(bytes.substr(0, bytes.size() - 7));
  CHECK_THROWS_WITH_AS(hpo::load_state(path), doctest::Contains("truncated"), Error);
  write("hello");
  CHECK_THROWS_WITH_AS(hpo::load_state(path), doctest::Contains("not a gradhpo state file"), Error);
  hpo::T1T2 other(task.problem, sgd_outer(0.02));
  CHECK_THROWS_WITH_AS(other.step(s), doctest::Contains("the state was made by 'hyperdistill'"), Error);
}

TEST_CASE("the toy bilevel problem: every method against the closed form 2(alpha - 1)") {
  const double alpha = 0.3;
  const hpo::BilevelProblem p = toy_bilevel(alpha, 200, 0.1);
  const Tensor th = p.hyper.initial();
  const double closed = 2 * (alpha - 1);
  std::vector<hpo::LadderMethod> methods = hpo::standard_ladder();
  const std::vector<hpo::LadderRow> rows = hpo::exactness_ladder(p, th, methods);
  std::ostringstream table;
  for (const hpo::LadderRow& r : rows)
    table << "\n  " << r.name << ": " << (r.ran ? std::to_string(r.d_theta.at(0)) : "refused: " + r.note);
  MESSAGE("closed form " << closed << ";" << table.str());
  for (const hpo::LadderRow& r : rows) {
    if (r.name == "reverse, exact reversal") {
      // The problem's momentum is 0: exact reversal would store every bit of v, and refuses.
      CHECK_FALSE(r.ran);
      CHECK(r.note.find("checkpoint") != std::string::npos);
      continue;
    }
    REQUIRE(r.ran);
    const bool exact = r.name.find("reverse") != std::string::npos || r.name == "forward mode";
    if (exact) CHECK(std::abs(r.d_theta.at(0) - closed) <= 1e-10);
  }
  // The one-step methods see only the last step's 2η dw/dα: far from the long-horizon answer.
  CHECK(std::abs(run_method("t1t2", p, th).d_theta.at(0) - closed) > 0.1);
}

TEST_CASE("the exactness ladder and check_hypergradient on the toy classifier") {
  const hpo::ClassificationTask task = toy_task(l2_spec());
  const Tensor th = task.problem.hyper.initial();
  const std::vector<hpo::LadderRow> rows = hpo::exactness_ladder(task.problem, th, hpo::standard_ladder());
  MESSAGE("\n" << hpo::ladder_table(rows));
  REQUIRE(rows.size() == 10);
  CHECK(rows[0].rel_error == 0);
  for (const hpo::LadderRow& r : rows) {
    CHECK(r.ran);
    if (r.name.find("reverse") != std::string::npos || r.name == "forward mode") {
      CHECK(r.rel_error <= 1e-8);
      CHECK(r.sign_agreement == 1.0);
    }
  }
  CHECK(hpo::ladder_table(rows, true).find("| DrMAD") != std::string::npos);
  const hpo::HypergradientCheck good = hpo::check_hypergradient(task.problem, th, *make_method("reverse"));
  CHECK(good.ok);
  CHECK(good.verdict.find("agrees") != std::string::npos);
  Tensor wrong = run_method("reverse", task.problem, th).d_theta.clone();
  for (std::int64_t i = 0; i < wrong.numel(); ++i) wrong.flat_slice(i, 1).fill(-wrong.at(i));
  const hpo::HypergradientCheck bad = hpo::check_hypergradient(task.problem, th, wrong);
  CHECK_FALSE(bad.ok);
  CHECK(bad.verdict.find("wrong sign") != std::string::npos);
}
