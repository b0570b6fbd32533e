#include "hypergradient_descent.h"

#include <limits>

#include "../tensor_math.h"

namespace gradhpo::hpo {

HyperGroup hypergradient_descent_group(double initial_lr, bool safe) {
  return Hyperparameters::learning_rate(1, initial_lr, safe ? Transform::exp : Transform::identity);
}

HypergradientDescent::HypergradientDescent(const BilevelProblem& problem, OuterOptions outer)
    : OnlineMethod(problem, std::move(outer)) {
  refuse_groups([](const HyperGroup& g) { return g.kind == HyperKind::learning_rate && g.size() == 1; },
                "one global learning rate (blocks = 1, width 1)");
  require(problem.hyper.count() == 1, "hypergradient-descent learns exactly one learning rate; the problem has " +
                                          std::to_string(problem.hyper.count()) + " groups");
}

Tensor HypergradientDescent::step_hypergradient(Unroll&, BilevelState& state, const InnerState&, const Tensor& g,
                                                const InnerState&, double&) {
  // h_t = ∇f(w_t) · u_{t−1} (zero before the first step: no rate has acted yet).
  const Tensor u = state.extra["direction"].to(g.device());  // host memory after load_state
  return Tensor::from({u.defined() ? dot(g, u) : 0.0}, Shape{1}, DType::f64);
}

OnlineStep HypergradientDescent::step(BilevelState& state) {
  require(state.method == name(), name() + ": the state was made by '" + state.method + "'");
  require(state.step < problem_->horizon, name() + ": the run is over");
  place_inner(state);
  const std::int64_t t = state.step;
  BilevelState next = state;
  OnlineStep out;
  out.val_loss = std::numeric_limits<double>::quiet_NaN();
  LossPass lp;
  {
    Unroll u(*problem_, state.theta);
    lp = u.gradient(state.inner.w(), t);
    double unused = 0;
    out.hypergradient = step_hypergradient(u, next, state.inner, lp.grad, state.inner, unused);
  }
  out.train_loss = lp.loss;
  out.clipped = apply_update(next, out.hypergradient);  // α_t = α_{t−1} − β h_t, kept >= 0
  // w_{t+1} = Φ(w_t, α_t, g_t), and u_t = ∂w_{t+1}/∂θ from the same step's JVP.
  Unroll u(*problem_, next.theta);
  StepJvp j = u.step_jvp(state.inner, {}, lp.grad, Tensor(), t);
  next.extra["direction"] = j.tangents[0].defined() ? j.tangents[0].reshape(Shape{state.inner.w().numel()}).clone()
                                                   : Tensor::zeros(state.inner.w().shape(), state.inner.w().dtype(),
                                                                   state.inner.w().device());
  next.inner = std::move(j.next);
  next.step = t + 1;
  next.train_losses.push_back(out.train_loss);
  next.val_losses.push_back(out.val_loss);
  state = std::move(next);
  return out;
}

}  // namespace gradhpo::hpo
