#include "schedule_baselines.h"

#include <cmath>
#include <map>
#include <numbers>
#include <random>

#include "../online/hypergradient_descent.h"
#include "../progress.h"

namespace gradhpo::hpo {

namespace {

/// θ of a learning-rate-schedule problem with every block at `lr` (the other groups at `others`,
/// by kind: groups are found by kind, never by name), through each group's transform.
Tensor schedule_theta(const Hyperparameters& h, double lr, const std::map<HyperKind, double>& others) {
  std::vector<double> theta(static_cast<std::size_t>(h.size()), 0.0);
  for (int g = 0; g < static_cast<int>(h.count()); ++g) {
    const HyperGroup& group = h.group(g);
    const auto other = others.find(group.kind);
    const double value = group.kind == HyperKind::learning_rate ? lr : other != others.end() ? other->second : 0.0;
    for (std::int64_t i = 0; i < group.size(); ++i)
      theta[static_cast<std::size_t>(h.offset(g) + i)] = inverse_transform(group.transform, value);
  }
  return Tensor::from(theta, Shape{h.size()}, DType::f64);
}

void require_schedule(const BilevelProblem& p, const std::string& method) {
  require(p.hyper.find(HyperKind::learning_rate) >= 0,
          method + ": the problem has no learning-rate group (use the schedule experiment)");
  for (const HyperGroup& g : p.hyper.groups())
    require(is_optimizer_defining(g.kind), method + ": the problem's group '" + g.name + "' (" + kind_name(g.kind) +
                                               ") is not part of a learning-rate schedule (use the schedule experiment)");
}

}  // namespace

void CosineGrid::validate() const {
  const auto check = [](const std::vector<double>& v, const std::string& name) {
    require(!v.empty(), "cosine: no " + name + " to try");
    for (double x : v) require(std::isfinite(x), "cosine: a " + name + " value is not finite");
  };
  check(initial_lrs, "initial learning rates");
  check(momenta, "momenta");
  check(weight_decays, "weight decays");
}

CompareMethod cosine_schedule_entry(std::vector<double> initial_lrs) {
  CosineGrid grid;
  grid.initial_lrs = std::move(initial_lrs);
  return cosine_schedule_entry(std::move(grid));
}

CompareMethod cosine_schedule_entry(CosineGrid grid) {
  CompareMethod m;
  m.name = "hand-tuned cosine schedule";
  m.validate = [grid](const BilevelProblem& p, const Budget&) {
    grid.validate();
    require_schedule(p, "cosine");
    for (const auto& [kind, values] : {std::pair{HyperKind::momentum, grid.momenta}, std::pair{HyperKind::weight_decay, grid.weight_decays}})
      for (double v : values)
        require(v == 0 || p.hyper.find(kind) >= 0, std::string("cosine: a ") + kind_name(kind) + " of " + std::to_string(v) +
                                                       " to try, but the problem does not learn one");
  };
  m.run = [name = m.name, grid](const BilevelProblem& p, const Budget&) {
    // A fixed protocol: exactly the grid, whatever budget the others get.
    Budget exactly;
    exactly.trials = static_cast<std::int64_t>(grid.size());
    TrialRunner runner(p, exactly, 0, name);
    for (double weight_decay : grid.weight_decays)
      for (double momentum : grid.momenta)
        for (double lr0 : grid.initial_lrs) {
          // θ: α₀ (1 + cos(π t / T)) / 2 at the middle step t of each block; momentum and weight decay held.
          std::vector<double> theta(static_cast<std::size_t>(p.hyper.size()), 0.0);
          for (int g = 0; g < static_cast<int>(p.hyper.count()); ++g) {
            const HyperGroup& group = p.hyper.group(g);
            for (std::int64_t b = 0; b < group.blocks; ++b)
              for (std::int64_t k = 0; k < group.width; ++k) {
                const double mid = (static_cast<double>(b) + 0.5) / static_cast<double>(group.blocks);
                const double value = group.kind == HyperKind::learning_rate ? lr0 * 0.5 * (1 + std::cos(std::numbers::pi * mid))
                                     : group.kind == HyperKind::momentum    ? momentum
                                     : group.kind == HyperKind::weight_decay ? weight_decay
                                                                             : 0.0;
                theta[static_cast<std::size_t>(p.hyper.offset(g) + b * group.width + k)] = inverse_transform(group.transform, value);
              }
          }
          runner.run_at(Tensor::from(theta, Shape{p.hyper.size()}, DType::f64));
        }
    return search_result(p, name, runner.finish("every combination of the hand-tuned grid tried"));
  };
  return m;
}

CompareMethod hypergradient_descent_schedule_entry(OuterOptions online, std::uint64_t seed) {
  CompareMethod m;
  m.name = "hypergradient descent (one global rate)";
  m.validate = [](const BilevelProblem& p, const Budget&) { require_schedule(p, "hypergradient descent"); };
  m.run = [name = m.name, online, seed](const BilevelProblem& p, const Budget& budget) {
    TrialRunner runner(p, budget, 0, name);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    while (runner.can_run()) {
      const double lr0 = unit(rng), momentum = 0.99 * unit(rng), weight_decay = 4e-3 * unit(rng);
      // The same problem with one global rate as its only hyperparameter, the others fixed.
      BilevelProblem q = p;
      q.hyper = Hyperparameters();
      q.hyper.add(hypergradient_descent_group(lr0, false));
      q.optimizer.momentum = momentum;
      q.optimizer.weight_decay = weight_decay;
      const std::unique_ptr<OnlineMethod> hd = Registry::global().make_online("hypergradient-descent", q, online);
      BilevelState s = hd->init();
      const std::map<HyperKind, double> held = {{HyperKind::momentum, momentum}, {HyperKind::weight_decay, weight_decay}};
      try {
        hd->run(s);
      } catch (const InnerDivergence& e) {  // its own run diverged: a failed trial at where it started
        runner.fail(schedule_theta(p.hyper, lr0, held), e.step(), "its online run from α₀ = " + std::to_string(lr0) +
                                                                 ": inner step " + std::to_string(e.step()) + ": " + e.what(),
                    e.value());
        continue;
      }
      runner.run_at(schedule_theta(p.hyper, s.theta.to_vector()[0], held));
    }
    return search_result(p, name, runner.finish());
  };
  return m;
}

}  // namespace gradhpo::hpo
