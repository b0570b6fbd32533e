#include "bayesian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <tuple>

#include <gsl/gsl_qrng.h>
#include <nlopt.hpp>

#include "../../../data/random.h"
#include "../random_search.h"

namespace gradhpo::hpo {

std::vector<std::vector<double>> sobol_design(int n, int dims, std::uint64_t seed) {
  require(n >= 0 && dims >= 1, "sobol design: need n >= 0 points of dimension >= 1");
  require(static_cast<unsigned>(dims) <= gsl_qrng_sobol->max_dimension,
          "sobol design: GSL's Sobol sequence has at most " + std::to_string(gsl_qrng_sobol->max_dimension) +
              " dimensions, the box has " + std::to_string(dims));
  const std::unique_ptr<gsl_qrng, void (*)(gsl_qrng*)> q(gsl_qrng_alloc(gsl_qrng_sobol, static_cast<unsigned>(dims)),
                                                         gsl_qrng_free);
  require(q != nullptr, "sobol design: gsl_qrng_alloc failed");
  std::mt19937_64 rng(data::derive_seed(seed, 2));
  std::vector<double> shift(static_cast<std::size_t>(dims));
  for (double& s : shift) s = unit_uniform(rng);
  std::vector<std::vector<double>> out;
  std::vector<double> x(static_cast<std::size_t>(dims));
  for (int i = 0; i < n; ++i) {
    gsl_qrng_get(q.get(), x.data());
    for (std::size_t d = 0; d < x.size(); ++d) x[d] = std::fmod(x[d] + shift[d], 1.0);
    out.push_back(x);
  }
  return out;
}

std::vector<double> maximize_expected_improvement(const GaussianProcess& gp, double incumbent, int candidates,
                                                  int starts, std::uint64_t seed) {
  const auto D = static_cast<std::size_t>(gp.params().length_scales.size());
  std::mt19937_64 rng(data::derive_seed(seed, 3));
  struct Scored {
    double ei;
    std::vector<double> u;
  };
  std::vector<Scored> pool;
  for (int c = 0; c < std::max(candidates, 1); ++c) {
    std::vector<double> u(D);
    for (double& v : u) v = unit_uniform(rng);
    pool.push_back({gp.expected_improvement(Eigen::Map<const Eigen::VectorXd>(u.data(), static_cast<Eigen::Index>(D)), incumbent), u});
  }
  std::stable_sort(pool.begin(), pool.end(), [](const Scored& a, const Scored& b) { return a.ei > b.ei; });

  struct Search {
    const GaussianProcess* gp;
    double incumbent;
    Scored best;
  } search{&gp, incumbent, pool.front()};
  auto objective = [](const std::vector<double>& u, std::vector<double>& grad, void* data) -> double {
    auto* s = static_cast<Search*>(data);
    const Eigen::Map<const Eigen::VectorXd> x(u.data(), static_cast<Eigen::Index>(u.size()));
    Eigen::VectorXd g;
    const double ei = s->gp->expected_improvement(x, s->incumbent, grad.empty() ? nullptr : &g);
    if (!grad.empty()) Eigen::Map<Eigen::VectorXd>(grad.data(), g.size()) = g;
    if (ei > s->best.ei) s->best = {ei, u};
    return ei;
  };
  const int n_starts = std::clamp(starts, 1, static_cast<int>(pool.size()));
  for (int s = 0; s < n_starts; ++s) {
    if (pool[static_cast<std::size_t>(s)].ei <= 0) break;  // flat zero: no gradient to follow
    std::vector<double> u = pool[static_cast<std::size_t>(s)].u;
    nlopt::opt opt(nlopt::LD_LBFGS, static_cast<unsigned>(D));
    opt.set_lower_bounds(std::vector<double>(D, 0.0));
    opt.set_upper_bounds(std::vector<double>(D, 1.0));
    opt.set_max_objective(objective, &search);
    opt.set_maxeval(100);
    opt.set_xtol_rel(1e-6);
    double value = 0;
    try {
      opt.optimize(u, value);
    } catch (const std::exception&) {
      // roundoff_limited: the best point seen is kept by the objective.
    }
  }
  return search.best.u;
}

namespace {

/// The GP's data: every trial, a failed one at the worst finished loss.
struct Observations {
  Eigen::MatrixXd x;
  Eigen::VectorXd y;
  double best = std::numeric_limits<double>::infinity();
};

Observations observations(const std::vector<Trial>& trials) {
  Observations o;
  double worst = -std::numeric_limits<double>::infinity();
  for (const Trial& t : trials)
    if (!t.failed) {
      o.best = std::min(o.best, t.val_loss);
      worst = std::max(worst, t.val_loss);
    }
  const auto n = static_cast<Eigen::Index>(trials.size());
  const auto D = static_cast<Eigen::Index>(trials.empty() ? 0 : trials.front().point.size());
  o.x.resize(n, D);
  o.y.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Trial& t = trials[static_cast<std::size_t>(i)];
    for (Eigen::Index d = 0; d < D; ++d) o.x(i, d) = t.point[static_cast<std::size_t>(d)];
    o.y[i] = t.failed ? worst : t.val_loss;
  }
  return o;
}

}  // namespace

void BayesianOptions::validate(const BilevelProblem& problem) const {
  SearchOptions::validate(problem);
  require(q >= 1, "Bayesian optimization: q (points per round) must be >= 1, got " + std::to_string(q));
  require(initial_points >= 0 && acquisition_candidates >= 0 && acquisition_starts >= 1,
          "Bayesian optimization: initial_points and acquisition_candidates must be >= 0, acquisition_starts >= 1");
  require(box.size() <= gsl_qrng_sobol->max_dimension,
          "Bayesian optimization: GSL's Sobol sequence has at most " + std::to_string(gsl_qrng_sobol->max_dimension) +
              " dimensions, the box has " + std::to_string(box.size()));
  require(fit.restarts >= 0 && fit.max_evaluations >= 1, "Bayesian optimization: fit.restarts must be >= 0, fit.max_evaluations >= 1");
  for (auto [lo, hi, name] : {std::tuple{fit.min_length_scale, fit.max_length_scale, "length_scale"},
                              std::tuple{fit.min_signal_variance, fit.max_signal_variance, "signal_variance"},
                              std::tuple{fit.min_noise_variance, fit.max_noise_variance, "noise_variance"}})
    require(lo > 0 && lo <= hi && std::isfinite(hi), std::string("Bayesian optimization: fit bounds on ") + name +
                                                         " must satisfy 0 < min <= max < inf");
}

SearchRun bayesian_optimization(const BilevelProblem& problem, const BayesianOptions& options) {
  options.validate(problem);
  TrialRunner runner(problem, options, "Bayesian optimization (seed " + std::to_string(options.seed) +
                                           (options.q > 1 ? ", q = " + std::to_string(options.q) : std::string()) + ")");
  const int D = static_cast<int>(runner.box().size());
  const int initial = options.initial_points > 0 ? options.initial_points : std::max(5, 2 * D);
  const int candidates = options.acquisition_candidates > 0 ? options.acquisition_candidates : 256 * D;
  // The Sobol sequence continues past the initial design while no trial has finished.
  std::vector<std::vector<double>> sobol = sobol_design(initial, D, options.seed);
  std::size_t next_sobol = 0;

  GpParams params;
  params.length_scales = Eigen::VectorXd::Constant(D, 0.5);
  GpFitOptions fit = options.fit;
  // One round: a batch of q points chosen from the trials finished before it, then trained
  // together. Every seed derives from the trial's index, so q = 1 is the sequential loop.
  for (std::int64_t room = runner.batch_room(options.q); room > 0; room = runner.batch_room(options.q)) {
    Observations obs = observations(runner.trials());
    const double incumbent = obs.best;  // finished trials only: lies do not move it
    std::vector<std::vector<double>> batch;
    for (std::int64_t j = 0; j < room; ++j) {
      const std::uint64_t index = runner.trials().size() + static_cast<std::uint64_t>(j);
      if (next_sobol < static_cast<std::size_t>(initial) || !std::isfinite(incumbent)) {
        if (next_sobol == sobol.size()) sobol = sobol_design(static_cast<int>(2 * sobol.size()), D, options.seed);
        batch.push_back(sobol[next_sobol++]);
      } else {
        fit.seed = data::derive_seed(options.seed, 100 + index);
        const GaussianProcess gp = fit_gaussian_process(obs.x, obs.y, params, fit);
        params = gp.params();  // the next fit starts from this one (and from random restarts)
        runner.note_bytes(gp.nbytes());
        batch.push_back(maximize_expected_improvement(gp, incumbent, candidates, options.acquisition_starts,
                                                      data::derive_seed(options.seed, 200 + index)));
      }
      // Constant liar: the pending point enters the GP at the lie (the incumbent) until its
      // batch has trained.
      if (j + 1 < room) {
        const auto n = obs.x.rows();
        obs.x.conservativeResize(n + 1, D);
        obs.y.conservativeResize(n + 1);
        for (int d = 0; d < D; ++d) obs.x(n, d) = batch.back()[static_cast<std::size_t>(d)];
        obs.y[n] = incumbent;
      }
    }
    runner.run_batch(batch);
  }
  return runner.finish();
}

}  // namespace gradhpo::hpo
