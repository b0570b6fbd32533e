#include "online.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../progress.h"
#include "../resources.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

// ---- the method loop ------------------------------------------------------------------------------

OnlineMethod::OnlineMethod(const BilevelProblem& problem, OuterOptions outer)
    : problem_(&problem), outer_(std::move(outer)) {
  problem.validate();
  outer_.validate(problem.hyper.count());
}

Estimate OnlineMethod::estimate() const {
  const BilevelProblem& p = *problem_;
  const std::size_t P = static_cast<std::size_t>(p.num_params()), sz = dtype_size(p.dtype());
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  const std::size_t state = parts * P * sz, N = static_cast<std::size_t>(p.hyper.size());
  const std::size_t T = static_cast<std::size_t>(std::max<std::int64_t>(0, p.horizon));
  const auto [extra, what] = extra_buffers();
  Estimate e;
  // S_t and S_{t+1}, g_t, the state's copy; losses in the state and its copy; θ, its
  // hypergradient and the outer optimizer's moments (f64).
  e.buffer_bytes = 3 * state + P * sz + 2 * 2 * T * sizeof(double) + 4 * N * sizeof(double) + extra;
  e.gradient_equivalents = static_cast<double>(T);
  e.explain = "S_t, S_{t+1}, g_t and the state's copy (" + std::to_string(parts) + " x P = " + std::to_string(P) +
              " numbers each), two losses per step for T = " + std::to_string(T) + " steps" +
              (what.empty() ? std::string() : ", " + what);
  return e;
}

BilevelState OnlineMethod::init(const Tensor& theta0) const {
  // Before any work: a run that cannot fit is refused here, not at std::bad_alloc.
  check_memory(name(), estimate(), *problem_, {}, available_memory());
  BilevelState s;
  s.method = name();
  s.theta = theta0.defined() ? theta0.clone().to(DType::f64) : problem_->hyper.initial(DType::f64);
  problem_->hyper.check_range(s.theta, name().c_str());
  s.inner = Unroll(*problem_, s.theta).initial_state();
  s.outer = OuterOptimizer(problem_->hyper, outer_).state();
  return s;
}

std::vector<std::int64_t> OnlineMethod::apply_update(BilevelState& state, const Tensor& hypergradient) {
  OuterOptimizer opt(problem_->hyper, outer_);
  opt.state() = state.outer;
  std::vector<std::int64_t> clipped = opt.update(state.theta, hypergradient);
  state.outer = opt.state();
  return clipped;
}

void OnlineMethod::place_inner(BilevelState& state) const {
  for (Tensor& part : state.inner.parts) part = part.to(problem_->w0.device());
}

OnlineStep OnlineMethod::step(BilevelState& state) {
  require(state.method == name(), name() + ": the state was made by '" + state.method + "'");
  place_inner(state);
  require(state.step < problem_->horizon,
          name() + ": the run is over (step " + std::to_string(state.step) + " of " + std::to_string(problem_->horizon) + ")");
  Unroll u(*problem_, state.theta);
  const std::int64_t t = state.step;
  const LossPass lp = u.gradient(state.inner.w(), t);
  InnerState after = u.step(state.inner, lp.grad, t);
  BilevelState next = state;  // the state is only replaced once everything succeeded
  OnlineStep out;
  out.train_loss = lp.loss;
  out.val_loss = std::numeric_limits<double>::quiet_NaN();
  out.hypergradient = step_hypergradient(u, next, state.inner, lp.grad, after, out.val_loss).to(Device::cpu).to(DType::f64);
  if (const std::int64_t i = first_non_finite(out.hypergradient); i >= 0)
    throw InnerDivergence(name() + ": the hypergradient of " + problem_->hyper.entry_name(i) + " at step " +
                              std::to_string(t) + " is not finite",
                          t, out.hypergradient.at(i));
  out.clipped = apply_update(next, out.hypergradient);
  next.inner = std::move(after);
  next.step = t + 1;
  next.train_losses.push_back(out.train_loss);
  next.val_losses.push_back(out.val_loss);
  state = std::move(next);
  return out;
}

Tensor OnlineMethod::hypergradient(const BilevelState& state) {
  BilevelState copy = state;
  place_inner(copy);
  Unroll u(*problem_, copy.theta);
  const LossPass lp = u.gradient(copy.inner.w(), copy.step);
  const InnerState after = u.step(copy.inner, lp.grad, copy.step);
  double val = 0;
  return step_hypergradient(u, copy, copy.inner, lp.grad, after, val).to(Device::cpu).to(DType::f64);
}

OnlineStep OnlineMethod::run(BilevelState& state, std::int64_t steps) {
  OnlineStep last;
  const std::int64_t end = steps < 0 ? problem_->horizon : std::min(problem_->horizon, state.step + steps);
  const std::int64_t first = state.step;
  report_progress("online", 0, end - first);
  while (state.step < end) {
    last = step(state);
    report_progress("online", state.step - first, end - first);
  }
  return last;
}

void OnlineMethod::refuse_groups(bool (*allowed)(const HyperGroup&), const char* what) const {
  for (const HyperGroup& g : problem_->hyper.groups())
    require(allowed(g), name() + " cannot learn hyperparameter group '" + g.name + "' (" + kind_name(g.kind) +
                            "): it handles " + what);
}


}  // namespace gradhpo::hpo
