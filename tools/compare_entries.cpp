#include "compare_entries.h"

#include <chrono>
#include <cmath>
#include <map>
#include <numbers>
#include <random>

#include <gradhpo/hpo/inner_run.h>
#include <gradhpo/hpo/online/hypergradient_descent.h>
#include <gradhpo/hpo/progress.h>

namespace gradhpo::tools {

namespace {

using Clock = std::chrono::steady_clock;

/// θ of a learning-rate-schedule problem with every block at `lr` (the other groups at `others`,
/// by group name), through each group's transform.
Tensor schedule_theta(const hpo::Hyperparameters& h, double lr, const std::map<std::string, double>& others) {
  std::vector<double> theta(static_cast<std::size_t>(h.size()), 0.0);
  for (int g = 0; g < static_cast<int>(h.count()); ++g) {
    const hpo::HyperGroup& group = h.group(g);
    const auto other = others.find(group.name);
    const double value = group.name == "lr" ? lr : other != others.end() ? other->second : 0.0;
    for (std::int64_t i = 0; i < group.size(); ++i)
      theta[static_cast<std::size_t>(h.offset(g) + i)] = hpo::inverse_transform(group.transform, value);
  }
  return Tensor::from(theta, Shape{h.size()}, DType::f64);
}

void require_schedule(const hpo::BilevelProblem& p, const std::string& method) {
  require(p.hyper.find("lr") >= 0, method + ": the problem has no learning-rate group 'lr' (use the schedule experiment)");
  for (const hpo::HyperGroup& g : p.hyper.groups())
    require(g.name == "lr" || g.name == "momentum" || g.name == "weight_decay",
            method + ": the problem's group '" + g.name + "' is not part of a learning-rate schedule (use the schedule experiment)");
}

/// One evaluated point as a search trial, so that search_result makes the row.
hpo::Trial trial_at(const hpo::BilevelProblem& p, int index, const Tensor& theta) {
  hpo::Trial t;
  t.index = index;
  t.theta = theta.clone();
  t.inner_steps = p.horizon;
  const hpo::Candidate sc = hpo::evaluate_candidate(p, theta);
  t.val_loss = sc.val_loss;
  t.final_train_loss = sc.final_train_loss;
  t.failed = sc.failed;
  t.message = sc.message;
  return t;
}

void add_trial(hpo::SearchRun& run, hpo::Trial t) {
  if (t.failed) ++run.failures;
  else if (run.best < 0 || t.val_loss < run.best_val_loss()) run.best = t.index;
  run.inner_steps += t.inner_steps;
  run.trials.push_back(std::move(t));
}

hpo::MethodResult finish(const hpo::BilevelProblem& p, const std::string& name, hpo::SearchRun run, Clock::time_point start,
                         const hpo::BudgetMeter& meter) {
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (run.stop_reason.empty()) run.stop_reason = meter.exhausted_reason(p.horizon);
  hpo::MethodResult r = hpo::search_result(p, name, run);
  r.seconds = run.seconds;
  return r;
}

}  // namespace

hpo::CompareMethod forward_greedy_method(hpo::OuterOptions outer, hpo::ForwardOptions forward, std::int64_t lr_blocks) {
  hpo::CompareMethod m;
  m.name = "forward mode, greedy (" + std::to_string(lr_blocks) + " segments) + " + hpo::outer_name(outer.kind);
  m.validate = [outer](const hpo::BilevelProblem& p, const hpo::Budget&) { outer.validate(p.hyper.count()); };
  m.run = [name = m.name, outer, forward, lr_blocks](const hpo::BilevelProblem& p, const hpo::Budget& budget) {
    const auto start = Clock::now();
    const std::int64_t H = std::max<std::int64_t>(1, p.horizon / lr_blocks);
    hpo::BudgetMeter meter(budget);
    hpo::OuterOptions o = outer;
    o.max_steps = budget.inner_steps > 0 ? static_cast<int>(std::max<std::int64_t>(1, budget.inner_steps / p.horizon)) : 1 << 30;
    hpo::SearchRun run;
    hpo::Cost cost;
    const hpo::HypergradientMethod method = [forward](const hpo::BilevelProblem& q, const Tensor& th, const hpo::Segment* s) {
      return hpo::forward_hypergradient(q, th, forward, s);
    };
    const hpo::OuterRun greedy = hpo::run_greedy(p, H, method, o, Tensor(), [&](const hpo::OuterStep& s, const hpo::OuterOptimizer&) {
      hpo::accumulate(cost, s.cost);
      if (s.next_first != 0) return true;  // a pass ends with the segment that reaches T
      meter.charge(p.horizon);
      add_trial(run, trial_at(p, static_cast<int>(run.trials.size()), s.next_theta));
      return meter.can_start(p.horizon);
    });
    run.stop_reason = greedy.stop_reason;
    run.cost = cost;
    if (!meter.can_start(p.horizon)) run.stop_reason = meter.exhausted_reason(p.horizon);
    return finish(p, name, std::move(run), start, meter);
  };
  return m;
}

hpo::CompareMethod cosine_schedule_method(std::vector<double> initial_lrs) {
  hpo::CompareMethod m;
  m.name = "hand-tuned cosine schedule";
  m.validate = [initial_lrs](const hpo::BilevelProblem& p, const hpo::Budget&) {
    require(!initial_lrs.empty(), "cosine: no initial learning rates to try");
    require_schedule(p, "cosine");
  };
  m.run = [name = m.name, initial_lrs](const hpo::BilevelProblem& p, const hpo::Budget& budget) {
    const auto start = Clock::now();
    hpo::BudgetMeter meter(budget);
    hpo::SearchRun run;
    hpo::report_progress("trial", 0, static_cast<std::int64_t>(initial_lrs.size()));
    for (double lr0 : initial_lrs) {
      if (!meter.can_start(p.horizon)) break;
      // θ: α₀ (1 + cos(π t / T)) / 2 at the middle step t of each block; momentum and weight decay 0.
      std::vector<double> theta(static_cast<std::size_t>(p.hyper.size()), 0.0);
      for (int g = 0; g < static_cast<int>(p.hyper.count()); ++g) {
        const hpo::HyperGroup& group = p.hyper.group(g);
        for (std::int64_t b = 0; b < group.blocks; ++b)
          for (std::int64_t k = 0; k < group.width; ++k) {
            const double mid = (static_cast<double>(b) + 0.5) / static_cast<double>(group.blocks);
            const double value = group.name == "lr" ? lr0 * 0.5 * (1 + std::cos(std::numbers::pi * mid)) : 0.0;
            theta[static_cast<std::size_t>(p.hyper.offset(g) + b * group.width + k)] = hpo::inverse_transform(group.transform, value);
          }
      }
      meter.charge(p.horizon);
      add_trial(run, trial_at(p, static_cast<int>(run.trials.size()), Tensor::from(theta, Shape{p.hyper.size()}, DType::f64)));
      hpo::report_progress("trial", static_cast<std::int64_t>(run.trials.size()), static_cast<std::int64_t>(initial_lrs.size()));
    }
    if (run.trials.size() == initial_lrs.size()) run.stop_reason = "every initial learning rate tried";
    return finish(p, name, std::move(run), start, meter);
  };
  return m;
}

hpo::CompareMethod hypergradient_descent_schedule_method(hpo::OuterOptions online, std::uint64_t seed) {
  hpo::CompareMethod m;
  m.name = "hypergradient descent (online, one global rate)";
  m.validate = [](const hpo::BilevelProblem& p, const hpo::Budget&) { require_schedule(p, "hypergradient descent"); };
  m.run = [name = m.name, online, seed](const hpo::BilevelProblem& p, const hpo::Budget& budget) {
    const auto start = Clock::now();
    hpo::BudgetMeter meter(budget);
    hpo::SearchRun run;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const std::int64_t passes = budget.inner_steps > 0 ? budget.inner_steps / p.horizon : 0;
    hpo::report_progress("pass", 0, passes);
    while (meter.can_start(p.horizon)) {
      const double lr0 = unit(rng), momentum = 0.99 * unit(rng), weight_decay = 4e-3 * unit(rng);
      // The same problem with one global rate as its only hyperparameter, the others fixed.
      hpo::BilevelProblem q = p;
      q.hyper = hpo::Hyperparameters();
      q.hyper.add(hpo::hypergradient_descent_group(lr0, false));
      q.optimizer.momentum = momentum;
      q.optimizer.weight_decay = weight_decay;
      hpo::HypergradientDescent hd(q, online);
      hpo::BilevelState s = hd.init();
      meter.charge(p.horizon);
      const int index = static_cast<int>(run.trials.size());
      try {
        hd.run(s);
        add_trial(run, trial_at(p, index, schedule_theta(p.hyper, s.theta.to_vector()[0],
                                                          {{"momentum", momentum}, {"weight_decay", weight_decay}})));
      } catch (const hpo::InnerDivergence& e) {
        hpo::Trial t;
        t.index = index;
        t.failed = true;
        t.message = e.what();
        t.inner_steps = p.horizon;
        add_trial(run, std::move(t));
      }
      hpo::report_progress("pass", static_cast<std::int64_t>(run.trials.size()), passes);
    }
    return finish(p, name, std::move(run), start, meter);
  };
  return m;
}

}  // namespace gradhpo::tools
