#include "register.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../inner_run.h"
#include "../search/budget.h"

namespace gradhpo::hpo {

SearchRun hoag_within(const BilevelProblem& problem, HoagOptions options, const Budget& budget) {
  const std::int64_t per_pass = std::max<std::int64_t>(1, static_cast<std::int64_t>(options.batches.steps.size()));
  BudgetMeter meter(budget);
  if (budget.inner_steps > 0) options.max_passes = budget.inner_steps / per_pass;
  SearchRun run;
  run.method = "HOAG";
  // Each iterate is scored as it arrives, before the budget is read: training it from w₀ is what
  // makes it a candidate (as a trial's training is), so a budget in seconds or work counts that
  // time and HOAG stops within one iteration of its budget. (Scored after the loop, the scoring
  // of every iterate ran past the budget: 30 s against 10 s in an equal-seconds comparison.)
  options.on_iteration = [&](const HoagIteration& it) {
    const std::int64_t steps = (it.cost.gradient_evals + it.cost.fwd_over_rev_passes) * per_pass;
    meter.charge(steps);
    accumulate(run.cost, it.cost);
    Trial t;
    t.index = static_cast<int>(run.trials.size());
    t.theta = it.theta.clone();
    t.inner_steps = steps;
    t.seconds = it.cost.seconds;
    const Candidate sc = evaluate_candidate(problem, it.theta);
    t.val_loss = sc.val_loss;
    t.final_train_loss = sc.final_train_loss;
    t.failed = sc.failed;
    if (t.failed) {  // an iterate whose training from w₀ diverges is no candidate
      ++run.failures;
      t.failure = failed_trial(problem.hyper, it.theta, "hoag", t.index, sc.failed_step, sc.failed_value,
                               "HOAG iterate " + std::to_string(it.k) + ", trained from w₀: " + sc.message);
    } else if (run.best < 0 || t.val_loss < run.best_val_loss()) {
      run.best = t.index;
    }
    run.trials.push_back(std::move(t));
    return meter.can_start(0);  // the wall-time, work and trial budgets; max_passes keeps the step budget
  };
  const HoagRun hoag = run_hoag(problem, options);
  if (hoag.failure) {  // the iteration where HOAG's own solve diverged
    Trial t;
    t.index = static_cast<int>(run.trials.size());
    t.theta = hoag.theta.clone();
    t.failed = true;
    t.failure = *hoag.failure;
    t.failure.trial = t.index;
    ++run.failures;
    run.trials.push_back(std::move(t));
  }
  run.inner_steps = meter.steps_used();
  run.seconds = hoag.seconds;
  run.stop_reason = hoag.stop_reason;
  return run;
}

namespace {

HoagOptions hoag_options(const SearchOptions& common, const Options& o) {
  HoagOptions h;
  h.max_iterations = static_cast<int>(o.integer("max-iterations"));
  if (common.max_trials > 0) h.max_iterations = std::min(h.max_iterations, common.max_trials);
  h.decrease = parse_decrease(o.text("decrease"));
  h.tolerance_init = o.real("tolerance-init");
  h.exponential_rate = o.real("exponential-rate");
  h.tolerance_floor = o.real("tolerance-floor");
  h.max_inner_iterations = static_cast<int>(o.integer("max-inner-iterations"));
  h.lbfgs_memory = static_cast<int>(o.integer("lbfgs-memory"));
  h.max_cg_iterations = static_cast<int>(o.integer("max-cg-iterations"));
  h.initial_step = o.real("initial-step");
  return h;
}

}  // namespace

void register_hoag_method(Registry& r) {
  const HoagOptions d;
  SearchEntry e;
  e.name = "hoag";
  e.summary = "HOAG: inner problem by L-BFGS, the linear system by CG, both to tolerances that decrease; θ moves "
              "by the approximate hypergradient (loss-defining hyperparameters; ignores the search box)";
  e.citation = "Pedregosa 2016 (ICML), Algorithm 1, Section 4";
  e.options = {
      OptionSpec::integer("max-iterations", d.max_iterations, 1, 1 << 30, "outer iterations k (the budget may stop it first)"),
      OptionSpec::choice("decrease", decrease_name(d.decrease), {"exponential", "quadratic", "cubic"},
                         "tolerance sequence ε_k: ε₀ρ^k, ε₀/k², ε₀/k³ (Section 4)"),
      OptionSpec::real("tolerance-init", d.tolerance_init, 1e-300, 1e300, "ε₀, relative to the first iteration's norms"),
      OptionSpec::real("exponential-rate", d.exponential_rate, 1e-300, std::nextafter(1.0, 0.0), "ρ of the exponential sequence, in (0, 1)"),
      OptionSpec::real("tolerance-floor", d.tolerance_floor, 1e-300, 1e300, "ε_k never goes below this"),
      OptionSpec::integer("max-inner-iterations", d.max_inner_iterations, 1, 1 << 30, "L-BFGS iterations per outer iteration"),
      OptionSpec::integer("lbfgs-memory", d.lbfgs_memory, 1, 1 << 20, "L-BFGS corrections kept (m)"),
      OptionSpec::integer("max-cg-iterations", d.max_cg_iterations, 1, 1 << 30, "CG iterations per outer iteration"),
      OptionSpec::real("initial-step", d.initial_step, 0, 1e300, "1/L₁ (0: the reference implementation's rule)"),
  };
  e.validate = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    require_loss_defining(p.hyper, "HOAG");
    hoag_options(common, o).validate();
    common.budget.validate(p.horizon);
  };
  e.run = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    return hoag_within(p, hoag_options(common, o), common.budget);
  };
  r.add(std::move(e));
}

}  // namespace gradhpo::hpo
