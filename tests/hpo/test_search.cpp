// Black-box baselines (random search, grid search, Bayesian optimization with a Matérn-5/2 GP)
// and the equal-budget comparison harness: reproducibility, bounds and budget accounting, the
// GP's posterior, likelihood and EI against their definitions, BO against random search on an
// analytic function, the toy bilevel problem, and the errors a user can make.
#include <algorithm>
#include <cmath>
#include <limits>
#include <functional>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <gradhpo/data/random.h>
#include <gradhpo/engine/finite_diff.h>
#include <gradhpo/engine/ops.h>
#include <gradhpo/hpo/tasks/compare.h>
#include <gradhpo/hpo/tasks/register_all.h>

#include "toy.h"

using namespace gradhpo;
using namespace gradhpo::hpo;
using gradhpo::testing::contains;
using gradhpo::testing::scalar;
using gradhpo::testing::toy_alpha_problem;
using gradhpo::testing::user_value;
using gradhpo::testing::error_of;

namespace {

/// A problem whose validation loss is f(x, y) of two user values, whatever training does (one
/// inner step on a dummy weight): black-box search on an analytic function.
using Analytic = std::function<Var(const Var& x, const Var& y)>;
BilevelProblem analytic_problem(Analytic f) {
  BilevelProblem p;
  p.hyper.add(user_value("x", 0.0));
  p.hyper.add(user_value("y", 0.0));
  p.train_loss = [](const Var& w, const HyperValues&, std::int64_t) { return sum(square(w)); };
  p.val_loss = [f](const Var& w, const HyperValues& h) { return f(scalar(h["x"]), scalar(h["y"])) + 0.0 * scalar(w); };
  p.horizon = 1;
  p.w0 = Tensor::zeros(Shape{1}, DType::f64);
  return p;
}

/// Six-hump camel (Dixon & Szegő 1978): two global minima −1.031628 at ±(0.0898, −0.7126) and
/// four local ones in the usual box x ∈ [−2, 2], y ∈ [−1, 1]. (On the wider x ∈ [−3, 3],
/// y ∈ [−2, 2], where the function reaches 162, 20 evaluations of BO spend themselves on the
/// high walls — Micaelli & Storkey's Appendix E observation about wide search ranges.)
Var camel(const Var& x, const Var& y) {
  const Var x2 = square(x);
  return (4.0 - 2.1 * x2 + square(x2) / 3.0) * x2 + x * y + (4.0 * square(y) - 4.0) * square(y);
}
constexpr double kCamelMin = -1.0316284534898774;
const std::vector<Dimension> kCamelBox = {{"x", -2, 2}, {"y", -1, 1}};

bool same_trials(const SearchRun& a, const SearchRun& b) {
  if (a.trials.size() != b.trials.size()) return false;
  for (std::size_t i = 0; i < a.trials.size(); ++i)
    if (a.trials[i].values != b.trials[i].values || a.trials[i].val_loss != b.trials[i].val_loss) return false;
  return true;
}

}  // namespace

// --- random and grid search -------------------------------------------------------------------

TEST_CASE("random search reproduces for a seed, stays in the box and spends the budget exactly") {
  const BilevelProblem p = analytic_problem(camel);
  RandomSearchOptions o;
  o.box = {{"x", -3, 3}, {"y", 1e-3, 10, true}};  // y on a log scale
  o.budget.inner_steps = 23;                       // T = 1: exactly 23 trials
  o.seed = 7;
  const SearchRun a = random_search(p, o), b = random_search(p, o);
  CHECK(same_trials(a, b));
  CHECK(a.trials.size() == 23);
  CHECK(a.inner_steps == 23);
  CHECK(contains(a.stop_reason, "inner-step budget"));
  o.seed = 8;
  CHECK_FALSE(same_trials(a, random_search(p, o)));
  int below_one = 0;  // log-uniform: half of the mass of [1e-3, 10] is below 0.1 ... (3 of 4 decades below 1)
  for (const Trial& t : a.trials) {
    CHECK(t.values[0] >= -3);
    CHECK(t.values[0] <= 3);
    CHECK(t.values[1] >= 1e-3);
    CHECK(t.values[1] <= 10);
    CHECK(t.theta.at(0) == t.values[0]);  // identity transform: θ is λ
    below_one += t.values[1] < 1;
  }
  CHECK(below_one >= 12);  // about 3/4 of 23 when log-uniform; a linear draw puts ~2 below 1
  const Trial* best = a.best_trial();
  REQUIRE(best != nullptr);
  for (const Trial& t : a.trials) CHECK(best->val_loss <= t.val_loss);

  // A longer horizon: the budget is counted in inner steps, floor(B / T) runs, never over.
  BilevelProblem toy = toy_alpha_problem();
  RandomSearchOptions t;
  t.box = {{"alpha", -2, 3}};
  t.budget.inner_steps = 7 * toy.horizon + toy.horizon - 1;
  const SearchRun r = random_search(toy, t);
  CHECK(r.trials.size() == 7);
  CHECK(r.inner_steps == 7 * toy.horizon);
  CHECK(r.cost.gradient_evals == 7 * toy.horizon);
  t.max_trials = 3;
  CHECK(random_search(toy, t).trials.size() == 3);
}

TEST_CASE("grid search cut short by its budget: a seeded random order over the whole grid, never an unused budget") {
  const BilevelProblem p = analytic_problem(camel);
  GridSearchOptions o;
  o.box = kCamelBox;
  o.points = {10, 10};
  o.budget.inner_steps = 12;  // T = 1: 12 of 100 points
  const SearchRun cut = grid_search(p, o);
  REQUIRE(cut.trials.size() == 12);
  CHECK(cut.trials.front().values == std::vector<double>{-2, -1});  // the first point stays first
  CHECK(contains(cut.stop_reason, "cut after 12 of its 100 points"));
  // In lexicographic order the 12 points would hold x at its first two values; in the random
  // order they spread over x.
  std::set<double> xs;
  for (const auto& t : cut.trials) xs.insert(t.values[0]);
  CHECK(xs.size() >= 5);
  CHECK(same_trials(cut, grid_search(p, o)));  // the same seed: the same points in the same order
  o.seed = 1;
  CHECK_FALSE(same_trials(cut, grid_search(p, o)));
  // A budget of 3 runs in 2 dimensions: 1 value per dimension would train the centre alone; the
  // grid takes 2 values each and is cut at 3 of its 4 points.
  o.points.clear();
  o.budget.inner_steps = 3;
  const SearchRun small = grid_search(p, o);
  CHECK(small.method == "grid search (2 × 2)");
  CHECK(small.trials.size() == 3);
}

TEST_CASE("grid search: the largest grid the budget fits, bounds included, log-spaced on a log scale") {
  const BilevelProblem p = analytic_problem(camel);
  GridSearchOptions o;
  o.box = {{"x", -3, 3}, {"y", 0.01, 1, true}};
  o.budget.inner_steps = 30;  // T = 1: 5 × 5 = 25 <= 30 < 36
  const SearchRun g = grid_search(p, o);
  CHECK(g.trials.size() == 25);
  CHECK(g.method == "grid search (5 × 5)");
  CHECK(g.trials.front().values == std::vector<double>{-3, 0.01});
  CHECK(g.trials.back().values == std::vector<double>{3, 1});
  CHECK(g.trials[1].values[1] == doctest::Approx(std::sqrt(0.1) * 0.1).epsilon(1e-12));  // 0.01·10^(1/2)
  CHECK(g.trials[5].values[0] == doctest::Approx(-1.5).epsilon(1e-12));
  CHECK(contains(g.stop_reason, "the grid is done (25 points)"));
  CHECK(same_trials(g, grid_search(p, o)));
  // Given sizes larger than the budget: the grid is cut, and the stop reason says so.
  o.points = {4, 10};
  const SearchRun cut = grid_search(p, o);
  CHECK(cut.trials.size() == 30);
  CHECK(contains(cut.stop_reason, "cut after 30 of its 40 points"));
  CHECK(grid_points({3}) == std::vector<std::vector<double>>{{0.0}, {0.5}, {1.0}});
  CHECK(grid_points({1, 2}) == std::vector<std::vector<double>>{{0.5, 0.0}, {0.5, 1.0}});
}

TEST_CASE("a diverged training run is a failed trial, recorded and charged, and the search goes on") {
  BilevelProblem p = toy_alpha_problem();
  p.hyper = Hyperparameters();
  p.hyper.add(Hyperparameters::learning_rate(1, 0.25));
  p.hyper.add(user_value("alpha", 0.5));
  GridSearchOptions o;
  o.box = {{"lr", 0.1, 2.0}};  // lr = 2: w − α is multiplied by (1 − 2·2) = −3 per step, overflowing
                               // (lr = 1.05: by −1.1, and the linear L_val rewards the overshoot)
  o.points = {3};
  o.budget.inner_steps = 3 * p.horizon;
  p.loss_bound = 1e6;
  const SearchRun g = grid_search(p, o);
  REQUIRE(g.trials.size() == 3);
  CHECK(g.failures == 1);
  CHECK(g.trials[2].failed);
  CHECK(std::isnan(g.trials[2].val_loss));
  CHECK(contains(g.trials[2].failure.reason, "lr = 2"));
  CHECK(g.inner_steps == 3 * p.horizon);
  CHECK(g.best >= 0);
  CHECK(g.best != 2);
  // The failed trial's record (trial.h): where, at which λ, and — through the registry — by
  // the search's registered name.
  const FailedTrial& f = g.trials[2].failure;
  CHECK(f.trial == 2);
  CHECK(f.inner_step >= 0);
  CHECK(f.inner_step < p.horizon);
  REQUIRE(f.hyperparameters.size() == 2);
  CHECK(f.hyperparameters[0].first == "lr");
  CHECK(f.hyperparameters[0].second == doctest::Approx(2.0).epsilon(1e-12));
  REQUIRE_FALSE(std::isnan(f.value));  // the loss that overflowed or passed the bound (NaN: unknown)
  CHECK(std::abs(f.value) > p.loss_bound);
  register_all_methods();
  SearchOptions common;
  common.box = o.box;
  common.budget = o.budget;
  const SearchRun r = Registry::global().run_search("grid", p, common, {{"points-per-dimension", "3"}});
  REQUIRE(r.trials.size() == 3);
  CHECK(r.trials[2].failed);
  CHECK(r.trials[2].failure.method == "grid");
  CHECK(r.trials[2].failure.reason == g.trials[2].failure.reason);
  // The comparison's row carries the same record, and its JSON lists it.
  ComparisonOptions co;
  co.budget = o.budget;
  const Comparison c = compare(p, {search_entry("grid search", "grid", common, {{"points-per-dimension", "3"}})}, co);
  REQUIRE(c.results.at(0).failed_trials.size() == 1);
  CHECK(c.results[0].failed_trials[0].trial == 2);
  CHECK(c.results[0].failed_trials[0].reason == g.trials[2].failure.reason);
  CHECK(contains(c.json(), "\"failed_trials\": [{\"trial\": 2, \"inner_step\": "));
}

TEST_CASE("evaluate_candidate: a point fails when training diverges or its validation loss is not finite, and never wins") {
  // L_val = log x: NaN below 0, −∞ at 0 (which would beat every finite loss if it counted).
  const BilevelProblem p = analytic_problem([](const Var& x, const Var& y) { return log(x) + 0.0 * y; });
  auto at = [](double x) { return Tensor::from(std::vector<double>{x, 0.0}, Shape{2}, DType::f64); };
  const Candidate ok = evaluate_candidate(p, at(std::exp(1.0)));
  CHECK_FALSE(ok.failed);
  CHECK(ok.val_loss == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(ok.steps_run == p.horizon);
  for (double x : {-1.0, 0.0}) {
    const Candidate bad = evaluate_candidate(p, at(x));
    CHECK(bad.failed);
    CHECK(std::isnan(bad.val_loss));
    CHECK(contains(bad.message, "validation loss is not finite"));
  }
  BilevelProblem q = toy_alpha_problem();
  q.hyper = Hyperparameters();
  q.hyper.add(Hyperparameters::learning_rate(1, 2.0));  // (1 − 2·2) = −3 per step: diverges
  q.hyper.add(user_value("alpha", 0.5));
  q.loss_bound = 1e6;
  const Candidate diverged = evaluate_candidate(q, q.hyper.initial(DType::f64));
  CHECK(diverged.failed);
  CHECK(std::isnan(diverged.val_loss));
  CHECK(diverged.steps_run < q.horizon);
  CHECK(contains(diverged.message, "inner step"));
  // A search over x ∈ {−1, 0, 1}: two failed trials, the finite one is the best.
  GridSearchOptions o;
  o.box = {{"x", -1, 1}};  // y stays at its initial 0
  o.points = {3};
  o.budget.inner_steps = 3 * p.horizon;
  const SearchRun g = grid_search(p, o);
  REQUIRE(g.trials.size() == 3);
  CHECK(g.failures == 2);
  CHECK(g.best == 2);
  CHECK(contains(g.trials[1].failure.reason, "not finite"));
  CHECK(g.trials[1].failure.inner_step == -1);  // training finished; the validation loss failed
}

// --- the Gaussian process -----------------------------------------------------------------------

namespace {

struct GpData {
  Eigen::MatrixXd x;
  Eigen::VectorXd y;
};
/// y = sin(6 x₀) + x₁² at n seeded points of the unit square, scaled by 3 and shifted by 5 (the
/// GP must undo its own standardization).
GpData gp_data(int n) {
  GpData d{Eigen::MatrixXd(n, 2), Eigen::VectorXd(n)};
  std::mt19937_64 rng(11);
  for (int i = 0; i < n; ++i) {
    d.x(i, 0) = unit_uniform(rng);
    d.x(i, 1) = unit_uniform(rng);
    d.y[i] = 5 + 3 * (std::sin(6 * d.x(i, 0)) + d.x(i, 1) * d.x(i, 1));
  }
  return d;
}

GpParams params(double ell0, double ell1, double signal, double noise) {
  GpParams p;
  p.length_scales = Eigen::Vector2d(ell0, ell1);
  p.signal_variance = signal;
  p.noise_variance = noise;
  return p;
}

}  // namespace

TEST_CASE("GP posterior at the training points equals the data within the noise") {
  const GpData d = gp_data(12);
  for (double noise : {1e-6, 1e-2}) {
    const GaussianProcess gp(d.x, d.y, params(0.4, 0.6, 1.0, noise));
    const double scale = std::sqrt((d.y.array() - d.y.mean()).square().sum() / 11);
    for (int i = 0; i < 12; ++i) {
      const GaussianProcess::Prediction pr = gp.predict(d.x.row(i).transpose());
      CHECK(std::abs(pr.mean - d.y[i]) <= 3 * std::sqrt(noise) * scale);
      CHECK(pr.variance <= noise * scale * scale * 1.0001);  // latent variance: at most the noise
    }
    // Far from the data the posterior returns to the prior: mean of the data, σ_f² · scale².
    const GaussianProcess::Prediction far = gp.predict(Eigen::Vector2d(40, 40));
    CHECK(far.mean == doctest::Approx(d.y.mean()).epsilon(1e-9));
    CHECK(far.variance == doctest::Approx(scale * scale).epsilon(1e-9));
  }
}

TEST_CASE("GP marginal likelihood: the analytic gradient matches central differences, and the fit improves it") {
  const GpData d = gp_data(10);
  const GpParams start = params(0.05, 3.0, 0.3, 0.1);  // a poor guess: too short, too long, too noisy
  const GaussianProcess gp(d.x, d.y, start);
  const Eigen::VectorXd grad = gp.log_marginal_likelihood_gradient();
  const Eigen::VectorXd p0 = start.to_log();
  for (Eigen::Index j = 0; j < p0.size(); ++j) {
    const double fd_grad = fd::derivative([&](double eps) {
      Eigen::VectorXd p = p0;
      p[j] += eps;
      return GaussianProcess(d.x, d.y, GpParams::from_log(p)).log_marginal_likelihood();
    }, 1e-4);
    CHECK(std::abs(grad[j] - fd_grad) <= 1e-6 * std::max(1.0, std::abs(fd_grad)));
  }
  const GaussianProcess fitted = fit_gaussian_process(d.x, d.y, start);
  MESSAGE("log marginal likelihood: start " << gp.log_marginal_likelihood() << ", fitted "
                                            << fitted.log_marginal_likelihood());
  CHECK(fitted.log_marginal_likelihood() > gp.log_marginal_likelihood() + 1);
  // At the optimum inside the bounds the gradient vanishes.
  const Eigen::VectorXd g = fitted.log_marginal_likelihood_gradient(), q = fitted.params().to_log();
  const GpFitOptions bounds;
  const double lower[4] = {std::log(bounds.min_length_scale), std::log(bounds.min_length_scale),
                           std::log(bounds.min_signal_variance), std::log(bounds.min_noise_variance)};
  for (int j = 0; j < 4; ++j)
    if (q[j] > lower[j] + 1e-3) CHECK(std::abs(g[j]) <= 1e-2);
}

TEST_CASE("expected improvement: ~0 far below the incumbent, positive where the mean beats it, gradient exact") {
  const GpData d = gp_data(10);
  const GaussianProcess gp(d.x, d.y, params(0.3, 0.5, 1.0, 1e-4));
  const Eigen::Vector2d x(0.37, 0.61);
  const GaussianProcess::Prediction pr = gp.predict(x);
  const double sd = std::sqrt(pr.variance);
  // An incumbent 10 posterior standard deviations below the mean: no chance of improving.
  CHECK(gp.expected_improvement(x, pr.mean - 10 * sd) <= 1e-20);
  // An incumbent above the mean: EI >= the certain improvement f_best − μ.
  CHECK(gp.expected_improvement(x, pr.mean + 0.5) >= 0.5);
  // At the incumbent itself, EI = σ φ(0) (Snoek et al. Eq. 2 with γ = 0).
  CHECK(gp.expected_improvement(x, pr.mean) == doctest::Approx(sd / std::sqrt(2 * std::numbers::pi)).epsilon(1e-9));
  Eigen::VectorXd grad;
  const double incumbent = d.y.minCoeff();
  gp.expected_improvement(x, incumbent, &grad);
  for (int j = 0; j < 2; ++j) {
    const double fd_grad = fd::derivative([&](double eps) {
      Eigen::Vector2d xe = x;
      xe[j] += eps;
      return gp.expected_improvement(xe, incumbent);
    }, 1e-5);
    CHECK(std::abs(grad[j] - fd_grad) <= 1e-6 * std::max(1.0, std::abs(fd_grad)));
  }
}

TEST_CASE("Sobol design: GSL's sequence, reproducible for a seed, shifted per seed, inside the unit cube") {
  const auto a = sobol_design(16, 3, 0), b = sobol_design(16, 3, 0), c = sobol_design(16, 3, 1);
  CHECK(a == b);
  CHECK(a != c);
  for (const auto& u : a)
    for (double v : u) {
      CHECK(v >= 0);
      CHECK(v < 1);
    }
  // Sobol points 0 .. 2^k − 1 put one point in each of 2^k equal slabs of every coordinate, and
  // a shift mod 1 keeps that. GSL's sequence starts at point 1 (it skips the origin), so its
  // first 15 points fill 15 distinct slabs of 16.
  for (int dim = 0; dim < 3; ++dim) {
    std::vector<int> count(16, 0);
    for (int i = 0; i < 15; ++i) ++count[static_cast<std::size_t>(a[static_cast<std::size_t>(i)][static_cast<std::size_t>(dim)] * 16)];
    CHECK(std::count(count.begin(), count.end(), 1) == 15);
  }
  CHECK(contains(error_of([] { sobol_design(4, 41, 0); }), "at most 40 dimensions"));
}

// --- Bayesian optimization ------------------------------------------------------------------------

TEST_CASE("Bayesian optimization beats random search on the six-hump camel at the same small budget") {
  const BilevelProblem p = analytic_problem(camel);
  double bo_regret = 0, rs_regret = 0;
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    BayesianOptions b;
    b.box = kCamelBox;
    b.budget.inner_steps = 20;
    b.seed = seed;
    const SearchRun bo = bayesian_optimization(p, b);
    RandomSearchOptions r;
    r.box = kCamelBox;
    r.budget.inner_steps = 20;
    r.seed = seed;
    const SearchRun rs = random_search(p, r);
    CHECK(bo.trials.size() == 20);
    CHECK(rs.trials.size() == 20);
    MESSAGE("seed " << seed << ": BO best " << bo.best_val_loss() << ", random search best " << rs.best_val_loss());
    bo_regret += bo.best_val_loss() - kCamelMin;
    rs_regret += rs.best_val_loss() - kCamelMin;
    CHECK(bo.best_val_loss() - kCamelMin <= 0.05);
    if (seed == 0) CHECK(same_trials(bo, bayesian_optimization(p, b)));
  }
  CHECK(bo_regret < rs_regret);
}

TEST_CASE("Bayesian optimization starts with max(5, 2D) Sobol points and pins a 1-D quadratic's minimum") {
  BilevelProblem p = analytic_problem([](const Var& x, const Var&) { return square(x - 0.3); });
  BayesianOptions b;
  b.box = {{"x", -2, 2}};
  b.budget.inner_steps = 12;
  const SearchRun bo = bayesian_optimization(p, b);
  const auto sobol = sobol_design(5, 1, 0);
  for (int i = 0; i < 5; ++i) CHECK(bo.trials[static_cast<std::size_t>(i)].point == sobol[static_cast<std::size_t>(i)]);
  CHECK(bo.best_trial()->values[0] == doctest::Approx(0.3).epsilon(1e-2));
  CHECK(bo.best_val_loss() <= 1e-4);
  CHECK(bo.cost.peak_bytes > 0);
}

TEST_CASE("Bayesian optimization goes on through diverged trials, which enter the GP at the worst loss") {
  // Training w ← w − lr·2w from w₀ = 1 for 20 steps: the loss w_t² = (1 − 2 lr)^{2t} of step
  // t = 19 passes the bound 1e3 iff |1 − 2 lr| > 1e3^{1/38}, i.e. lr > 1.0997. The validation
  // loss is camel(x, y), whatever the weights.
  BilevelProblem p = analytic_problem(camel);
  p.hyper.add(Hyperparameters::learning_rate(1, 0.1));
  p.horizon = 20;
  p.w0 = Tensor::full(Shape{1}, 1.0, DType::f64);
  p.loss_bound = 1e3;
  BayesianOptions b;
  b.box = {{"x", -2, 2}, {"y", -1, 1}, {"lr", 0.1, 3.0}};
  b.budget.inner_steps = 16 * p.horizon;
  const SearchRun bo = bayesian_optimization(p, b);
  CHECK(bo.trials.size() == 16);
  CHECK(bo.failures >= 1);
  const double diverges_above = (1 + std::pow(1e3, 1.0 / 38)) / 2;
  for (const Trial& t : bo.trials) CHECK(t.failed == (t.values[2] > diverges_above));
  REQUIRE(bo.best_trial() != nullptr);
  CHECK(bo.best_trial()->values[2] <= diverges_above);
  CHECK(std::isfinite(bo.best_val_loss()));
}

namespace {

/// Today's sequential loop (before batches of q), written out from the public pieces: the
/// reference q = 1 must reproduce bit for bit.
SearchRun sequential_bayesian(const BilevelProblem& p, const BayesianOptions& o) {
  TrialRunner runner(p, o, "Bayesian optimization (seed " + std::to_string(o.seed) + ")");
  const int D = static_cast<int>(runner.box().size());
  const int initial = o.initial_points > 0 ? o.initial_points : std::max(5, 2 * D);
  const int candidates = o.acquisition_candidates > 0 ? o.acquisition_candidates : 256 * D;
  std::vector<std::vector<double>> sobol = sobol_design(initial, D, o.seed);
  std::size_t next_sobol = 0;
  GpParams params;
  params.length_scales = Eigen::VectorXd::Constant(D, 0.5);
  GpFitOptions fit = o.fit;
  for (int iteration = 0; runner.can_run(); ++iteration) {
    double best = std::numeric_limits<double>::infinity(), worst = -best;
    for (const Trial& t : runner.trials())
      if (!t.failed) best = std::min(best, t.val_loss), worst = std::max(worst, t.val_loss);
    if (next_sobol < static_cast<std::size_t>(initial) || !std::isfinite(best)) {
      if (next_sobol == sobol.size()) sobol = sobol_design(static_cast<int>(2 * sobol.size()), D, o.seed);
      runner.run(sobol[next_sobol++]);
      continue;
    }
    const auto n = static_cast<Eigen::Index>(runner.trials().size());
    Eigen::MatrixXd x(n, D);
    Eigen::VectorXd y(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Trial& t = runner.trials()[static_cast<std::size_t>(i)];
      for (int d = 0; d < D; ++d) x(i, d) = t.point[static_cast<std::size_t>(d)];
      y[i] = t.failed ? worst : t.val_loss;
    }
    fit.seed = data::derive_seed(o.seed, 100 + static_cast<std::uint64_t>(iteration));
    const GaussianProcess gp = fit_gaussian_process(x, y, params, fit);
    params = gp.params();
    runner.note_bytes(gp.nbytes());
    runner.run(maximize_expected_improvement(gp, best, candidates, o.acquisition_starts,
                                             data::derive_seed(o.seed, 200 + static_cast<std::uint64_t>(iteration))));
  }
  return runner.finish();
}

/// Every trial's unit point and scores, as bits.
std::string trial_bits(const SearchRun& run) {
  std::string s;
  for (const Trial& t : run.trials) {
    for (double v : t.point) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    for (double v : {t.val_loss, t.final_train_loss}) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    s += t.failed ? 'F' : '-';
  }
  return s;
}

/// The diverging camel problem of the test above (lr > 1.0997 diverges).
BilevelProblem diverging_camel() {
  BilevelProblem p = analytic_problem(camel);
  p.hyper.add(Hyperparameters::learning_rate(1, 0.1));
  p.horizon = 20;
  p.w0 = Tensor::full(Shape{1}, 1.0, DType::f64);
  p.loss_bound = 1e3;
  return p;
}

}  // namespace

TEST_CASE("Bayesian optimization with q = 1 is the sequential loop bit for bit, failed trials included") {
  const BilevelProblem p = diverging_camel();
  BayesianOptions b;
  b.box = {{"x", -2, 2}, {"y", -1, 1}, {"lr", 0.1, 3.0}};
  b.budget.inner_steps = 14 * p.horizon;
  b.seed = 5;
  const SearchRun batched = bayesian_optimization(p, b), sequential = sequential_bayesian(p, b);
  REQUIRE(batched.trials.size() == 14);
  CHECK(batched.failures >= 1);
  CHECK(trial_bits(batched) == trial_bits(sequential));
  CHECK(batched.best == sequential.best);
  CHECK(batched.method == sequential.method);
}

TEST_CASE("Bayesian optimization with q = 4: rounds of 4 constant-liar points, distinct, the budget spent exactly") {
  const BilevelProblem p = analytic_problem(camel);
  BayesianOptions b;
  b.box = kCamelBox;
  b.budget.inner_steps = 18;  // 4 rounds of 4, then a last round of 2
  b.initial_points = 6;       // the second round mixes 2 Sobol points with 2 of the GP's
  b.q = 4;
  const SearchRun bo = bayesian_optimization(p, b);
  REQUIRE(bo.trials.size() == 18);
  CHECK(bo.method == "Bayesian optimization (seed 0, q = 4)");
  const auto sobol = sobol_design(6, 2, 0);
  for (std::size_t i = 0; i < 6; ++i) CHECK(bo.trials[i].point == sobol[i]);
  // The lie collapses the GP's variance at a pending point: no round proposes a point twice.
  for (std::size_t r = 0; r < 18; r += 4)
    for (std::size_t i = r; i < std::min<std::size_t>(r + 4, 18); ++i)
      for (std::size_t j = r; j < i; ++j) CHECK(bo.trials[i].point != bo.trials[j].point);
  CHECK(trial_bits(bo) == trial_bits(bayesian_optimization(p, b)));
  CHECK(trial_bits(bo) != [&] {  // q changes the proposals after the first batch of the GP
    BayesianOptions one = b;
    one.q = 1;
    return trial_bits(bayesian_optimization(p, one));
  }());
  CHECK(bo.best_val_loss() - kCamelMin <= 0.2);
  b.q = 0;
  CHECK(contains(error_of([&] { bayesian_optimization(p, b); }), "q (points per round) must be >= 1"));
}

// --- the toy problem -------------------------------------------------------------------------

TEST_CASE("toy bilevel problem (w*(alpha) = alpha, L_val = (alpha - 1)^2): every black-box method finds alpha = 1") {
  const BilevelProblem p = toy_alpha_problem();
  const double at_two = run_inner(p, Tensor::from({2.0}, Shape{1}, DType::f64)).val_loss;
  CHECK(at_two == doctest::Approx(1.0).epsilon(1e-9));  // (2 − 1)²
  const std::vector<Dimension> box = {{"alpha", -2, 3}};
  Budget budget;
  budget.inner_steps = 25 * p.horizon;

  RandomSearchOptions r;
  r.box = box;
  r.budget = budget;
  const SearchRun rs = random_search(p, r);
  GridSearchOptions g;
  g.box = box;
  g.budget = budget;
  const SearchRun gs = grid_search(p, g);  // 25 points −2 + 5k/24: 1 is at k = 14.4, 0.4·5/24 from k = 14
  BayesianOptions b;
  b.box = box;
  b.budget = budget;
  const SearchRun bo = bayesian_optimization(p, b);
  for (const SearchRun* s : {&rs, &gs, &bo}) {
    MESSAGE(s->brief());
    CHECK(s->inner_steps == budget.inner_steps);
    CHECK(s->best_trial()->values[0] == doctest::Approx(1.0).epsilon(0.1));
    CHECK(s->best_val_loss() == doctest::Approx(std::pow(s->best_trial()->values[0] - 1, 2)).epsilon(1e-9));
  }
  CHECK(std::abs(gs.best_trial()->values[0] - 1) == doctest::Approx(0.4 * 5 / 24).epsilon(1e-9));
  CHECK(std::abs(bo.best_trial()->values[0] - 1) <= 1e-3);
}

// --- the comparison harness ---------------------------------------------------------------------------

TEST_CASE("comparison harness: one row per method, the same inner-step budget for all, table/CSV/JSON") {
  const BilevelProblem p = toy_alpha_problem();
  const std::vector<Dimension> box = {{"alpha", -2, 3}};
  OuterOptions outer;
  outer.kind = OuterKind::sign;
  outer.step = {0.5};
  ComparisonOptions o;
  o.budget.inner_steps = 12 * p.horizon + 5;
  register_all_methods();
  SearchOptions common;  // the searches by their registry names, over the same box
  common.box = box;
  const Comparison c = compare(p,
                               {offline_entry("forward mode + sign", "forward", {}, outer),
                                search_entry("random search", "random", common), search_entry("grid search", "grid", common),
                                search_entry("Bayesian optimization", "bayesian", common)},
                               o);
  REQUIRE(c.results.size() == 4);
  for (const MethodResult& m : c.results) {
    MESSAGE(m.method << ": L_val " << m.best_val_loss << " at " << m.hyperparameters.at(0).second << "; " << m.stop_reason);
    CHECK(m.evaluations == 12);
    CHECK(m.inner_steps == 12 * p.horizon);
    CHECK(m.inner_steps <= o.budget.inner_steps);
    CHECK(m.hyperparameters.at(0).first == "alpha");
    CHECK(m.hyperparameters.at(0).second == doctest::Approx(1.0).epsilon(0.25));
    CHECK(std::isnan(m.test.accuracy));  // no evaluation callback
  }
  // Forward mode's own work is in its Cost: one forward-over-reverse pass per inner step.
  CHECK(c.results[0].cost.fwd_over_rev_passes == 12 * p.horizon);
  CHECK(c.results[0].peak_bytes > 0);
  CHECK(contains(c.results[0].stop_reason, "inner-step budget"));

  const std::string text = c.table(), md = c.table(TableFormat::markdown), csv = c.csv(), json = c.json();
  MESSAGE("\n" << text);
  MESSAGE("\n" << md);
  // budget, problem, header, rule, 4 rows, the hyperparameters found: a heading and 4 lines
  CHECK(std::count(text.begin(), text.end(), '\n') == 2 + 2 + 4 + 5);
  CHECK(std::count(md.begin(), md.end(), '\n') == 2 + 2 + 4 + 5);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 4);
  for (const char* name : {"forward mode + sign", "random search", "grid search", "Bayesian optimization"}) {
    CHECK(contains(text, name));
    CHECK(contains(json, std::string("\"method\": \"") + name + "\""));
  }
  CHECK(contains(json, "\"hyperparameters\": {\"alpha\": "));
  CHECK(contains(text, "equal budget: 485 inner steps (T = 40 inner steps per run"));
}

TEST_CASE("comparison harness: a method whose training diverges ends its own row, and the others still run") {
  const BilevelProblem p = toy_alpha_problem();
  RandomSearchOptions r;
  r.box = {{"alpha", -2, 3}};
  CompareMethod diverging;
  diverging.name = "diverging";
  diverging.run = [](const BilevelProblem&, const Budget&) -> MethodResult {
    throw InnerDivergence("inner training diverged at step 3: the training loss 2e+06 exceeds the bound 1e+06", 3);
  };
  ComparisonOptions o;
  o.budget.inner_steps = 4 * p.horizon;
  const Comparison c = compare(p, {random_search_method("random before", r), diverging, random_search_method("random after", r)}, o);
  REQUIRE(c.results.size() == 3);
  CHECK(c.results[0].evaluations == 4);
  CHECK(c.results[2].evaluations == 4);
  const MethodResult& d = c.results[1];
  CHECK(d.method == "diverging");
  CHECK(d.failures == 1);
  CHECK(contains(d.stop_reason, "diverged at step 3"));
  REQUIRE(d.failed_trials.size() == 1);
  CHECK(d.failed_trials[0].method == "diverging");
  CHECK(d.failed_trials[0].inner_step == 3);
  CHECK(contains(d.failed_trials[0].reason, "diverged at step 3"));
  CHECK(c.results[0].failed_trials.empty());
  CHECK(!contains(c.json().substr(0, c.json().find("diverging")), "failed_trials"));  // none where nothing failed
  CHECK(!d.theta.defined());
  CHECK(std::isnan(d.best_val_loss));
  CHECK(contains(c.table(), "diverging"));
}

TEST_CASE("comparison harness on a classifier: test accuracy through the evaluation callback, a time budget") {
  testing::ToySpec s;
  s.learn_momentum = s.learn_weight_decay = s.example_weights = false;
  s.l2 = testing::ToySpec::L2::per_tensor;  // one L2 coefficient per layer: two entries
  s.lr_blocks = 1;
  s.horizon = 20;
  auto task = std::make_shared<ClassificationTask>(testing::toy_task(s));
  const BilevelProblem& p = task->problem;
  OuterOptions outer;
  outer.step = {0.1};
  RandomSearchOptions r;
  r.box = {{"lr", 0.01, 1, true}, {"l2", 1e-4, 1e-1, true}};  // the whole l2 group as one value
  ComparisonOptions o;
  o.budget.inner_steps = 4 * p.horizon;
  o.evaluate = scorer(task, testing::formula_data(40, 5000, "formula:test"));
  // The problem's own validation set (its L_val is the mean cross-entropy over all of it).
  o.evaluate_validation = scorer(task, testing::formula_data(16, 1000, "formula:val"));
  register_all_methods();
  const Comparison c = compare(p, {offline_entry("forward", "forward", {}, outer), random_search_method("random", r)}, o);
  for (const MethodResult& m : c.results) {
    CHECK(m.test.accuracy >= 0);
    CHECK(m.test.accuracy <= 1);
    CHECK(std::isfinite(m.test.loss));
    // Scored after retraining at the row's θ: the loss on the validation set is its best L_val.
    CHECK(m.validation.loss == doctest::Approx(m.best_val_loss).epsilon(1e-12));
    CHECK(m.validation.accuracy >= 0);
    CHECK(m.validation.accuracy <= 1);
    CHECK(m.hyperparameters.size() == 3);  // lr, l2[layer 0], l2[layer 1]
  }
  // The search set both layers' L2 to one value: the table says so once.
  CHECK(contains(c.results[1].hyperparameters_brief, "(all 2)"));
  const auto& fwd = c.results[0].hyperparameters;  // the outer loop moves the two separately
  CHECK(contains(c.results[0].hyperparameters_brief, "(all 2)") == (fwd[1].second == fwd[2].second));
  MESSAGE("\n" << c.table());
  // A time budget: every method stops once the time is used, whatever its step count.
  o.budget = Budget{};
  o.budget.seconds = 0.05;
  o.evaluate = nullptr;
  o.evaluate_validation = nullptr;
  const Comparison timed = compare(p, {offline_entry("forward", "forward", {}, outer), random_search_method("random", r)}, o);
  for (const MethodResult& m : timed.results) {
    CHECK(m.evaluations >= 1);
    CHECK(contains(m.stop_reason, "time budget"));
    CHECK(m.seconds >= 0.05);
  }
}

// --- errors --------------------------------------------------------------------------------------------

TEST_CASE("search and comparison options are validated up front, with messages that name the field") {
  const BilevelProblem p = toy_alpha_problem();
  RandomSearchOptions o;
  o.box = {{"alpha", -2, 3}};
  auto random_error = [&](RandomSearchOptions bad) { return error_of([&] { random_search(p, bad); }); };

  o.budget = Budget{};
  CHECK(contains(random_error(o), "budget: a budget of zero"));
  o.budget.inner_steps = p.horizon - 1;
  CHECK(contains(random_error(o), "do not fit one training run of T = 40 steps"));
  o.budget.inner_steps = 10 * p.horizon;
  o.budget.seconds = std::nan("");
  CHECK(contains(random_error(o), "budget: seconds must be finite"));
  o.budget.seconds = 0;

  RandomSearchOptions bad = o;
  bad.box = {};
  CHECK(contains(random_error(bad), "search box: empty"));
  bad.box = {{"alpha", 3, -2}};
  CHECK(contains(random_error(bad), "lower bound 3.000000 > upper bound -2.000000"));
  bad.box = {{"alpha", std::nan(""), 1}};
  CHECK(contains(random_error(bad), "('alpha'): a bound is NaN"));
  bad.box = {{"alpha", 0, 1, true}};
  CHECK(contains(random_error(bad), "log scale needs bounds > 0"));
  bad.box = {{"beta", 0, 1}};
  CHECK(contains(random_error(bad), "'beta' is no hyperparameter entry or group (groups: alpha)"));
  bad.box = {{"alpha", 0, 1}, {"alpha", 1, 2}};
  CHECK(contains(random_error(bad), "entry alpha is already in dimension 0"));
  bad.max_trials = -1;
  bad.box = o.box;
  CHECK(contains(random_error(bad), "max_trials must be >= 0"));

  // A bound outside the group transform's range: a sigmoid momentum of 1 is θ = +inf.
  BilevelProblem m = p;
  m.hyper.add(Hyperparameters::momentum(1, 0.5, Transform::sigmoid));
  RandomSearchOptions mo = o;
  mo.box = {{"momentum", 0.5, 1.0}};
  CHECK(contains(error_of([&] { random_search(m, mo); }), "bound 1.000000 is outside the range of its sigmoid transform"));

  GridSearchOptions g;
  g.box = o.box;
  g.budget.seconds = 1;
  g.points = {2, 3};
  CHECK(contains(error_of([&] { grid_search(p, g); }), "2 point counts for 1 dimensions"));

  BayesianOptions bo;
  bo.box = o.box;
  bo.budget = o.budget;
  bo.initial_points = -1;
  CHECK(contains(error_of([&] { bayesian_optimization(p, bo); }), "initial_points and acquisition_candidates must be >= 0"));
  bo.initial_points = 0;
  bo.fit.min_noise_variance = 0;
  CHECK(contains(error_of([&] { bayesian_optimization(p, bo); }), "fit bounds on noise_variance must satisfy 0 < min"));

  // The comparison checks every method before running any.
  ComparisonOptions co;
  co.budget.inner_steps = 2 * p.horizon;
  RandomSearchOptions empty_box;
  const auto harness_error = [&](std::vector<CompareMethod> methods, const ComparisonOptions& opts) {
    return error_of([&] { compare(p, methods, opts); });
  };
  int runs = 0;
  CompareMethod counted = random_search_method("counted", o);
  const auto inner = counted.run;
  counted.run = [&runs, inner](const BilevelProblem& q, const Budget& b) {
    ++runs;
    return inner(q, b);
  };
  CHECK(contains(harness_error({counted, random_search_method("b", empty_box)}, co), "search box: empty"));
  register_all_methods();  // the same checks for an entry constructed by name, and its options by name
  CHECK(contains(harness_error({counted, search_entry("b", "random", SearchOptions{})}, co), "search box: empty"));
  SearchOptions common;
  common.box = o.box;
  CHECK(contains(error_of([&] { search_entry("g", "grid", common, {{"points-per-dimension", "0"}}); }),
                 "grid: option 'points-per-dimension' is 0, out of range"));
  CHECK(contains(error_of([&] { search_entry("r", "random", common, {{"colour", "blue"}}); }), "random: no option 'colour'"));
  CHECK(contains(error_of([&] { search_entry("r", "forward", common); }), "'forward' is not a search (it is offline)"));
  GridSearchOptions bad_grid;
  bad_grid.box = o.box;
  bad_grid.points = {0};
  CHECK(contains(harness_error({counted, grid_search_method("g", bad_grid)}, co), "0 points in a dimension"));
  CHECK(runs == 0);
  CHECK(contains(harness_error({random_search_method("a", o), random_search_method("a", o)}, co), "two methods are called 'a'"));
  CHECK(contains(harness_error({}, co), "no methods"));
  CHECK(contains(harness_error({random_search_method("a", o)}, ComparisonOptions{}), "a budget of zero"));

  // An empty validation set never makes a problem (make_classification_task rejects it).
  testing::ToySpec s;
  auto model = std::make_shared<nn::Mlp>(Shape{1, 2, 2}, 3, nn::MlpOptions{});
  data::Dataset empty = testing::formula_data(0, 0, "formula:empty");
  CHECK(contains(error_of([&] {
                   make_classification_task(model, testing::formula_data(8, 0, "formula:train"), empty, Hyperparameters(),
                                            nn::OptimizerConfig{}, 5);
                 }),
                 "classification problem: the validation set 'formula:empty' is empty"));
}
