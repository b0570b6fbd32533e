#include "one_step.h"

#include <limits>

#include <cmath>
#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

namespace {

constexpr double kInf = std::numeric_limits<double>::max();

std::size_t state_bytes(const BilevelProblem& p) {
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  return parts * static_cast<std::size_t>(p.num_params()) * dtype_size(p.dtype());
}

/// Passes of one one-step term: L_val at w_{t+1}, then the exact mixed product (one
/// forward-over-reverse pass) or DARTS' two θ-gradients.
double one_step_equivalents(double darts_radius) { return 1 + (darts_radius > 0 ? 2 : 4); }

/// Σ_k γ^{steps−1−k} h_{first+k} over `seg` (h ← γ h + h_t): the greedy sum; γ = 0 over a
/// one-step segment is T1–T2's term.
MethodOutput greedy_sum(Unroll& u, const Segment& seg, double gamma, double darts_radius, MethodOutput out) {
  Tensor h = Tensor::zeros(Shape{u.problem().hyper.size()}, DType::f64);
  InnerState s = seg.start;
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const std::int64_t t = seg.first + k;
    const LossPass lp = u.gradient(s.w(), t);
    out.final_train_loss = lp.loss;
    InnerState next = u.step(s, lp.grad, t);
    const Tensor term =
        detail::one_step_hypergradient(u, s, lp.grad, next, t, darts_radius, &out.val_loss).to(Device::cpu).to(DType::f64);
    Tensor acc = term.clone();
    axpy(acc, gamma, h);  // h_t = γ h_{t−1} + term_t
    h = acc;
    s = std::move(next);
  }
  out.d_theta = h;
  out.direct = u.validation(s.w()).grad_theta;
  out.cost.peak_bytes = 2 * s.nbytes();
  out.final_state = std::move(s);
  return out;
}

}  // namespace

const OptionSpecs& t1t2_option_specs() {
  static const OptionSpecs specs = {
      OptionSpec::real("darts-radius", 0, 0, kInf,
                       "0: the exact mixed product; r > 0: DARTS' central difference with eps = r / |g_bar| (Liu et al. 2019, Eq. 8)"),
  };
  return specs;
}

const OptionSpecs& greedy_option_specs() {
  static const OptionSpecs specs = {
      OptionSpec::real("gamma", 0.9, 0, 1, "weight gamma^(T-1-t) of step t's one-step term, in [0, 1)"),
      t1t2_option_specs().front(),
  };
  return specs;
}

T1t2Method::T1t2Method(const Options& options) : Method("t1t2", options, Support{}) {
  darts_radius_ = options.real("darts-radius");
}

Estimate T1t2Method::estimate(const BilevelProblem& p) const {
  Estimate e;
  e.buffer_bytes = 2 * state_bytes(p);
  e.gradient_equivalents = static_cast<double>(p.horizon) + one_step_equivalents(darts_radius_) + 1;
  e.explain = "S_t and S_{t+1} of the last step";
  return e;
}

MethodOutput T1t2Method::run(Unroll& u, const Segment& seg) const {
  // Train to the segment's last step, then take that step's one-step hypergradient.
  InnerState s = seg.start;
  report_progress("train", 0, seg.steps - 1);
  for (std::int64_t k = 0; k + 1 < seg.steps; ++k) {
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("train", k + 1, seg.steps - 1);
  }
  Segment last;
  last.start = std::move(s);
  last.first = seg.first + seg.steps - 1;
  last.steps = 1;
  MethodOutput out;
  out.label = darts_radius_ > 0 ? "T1-T2, DARTS form (last step)" : "T1-T2 (last step)";
  return greedy_sum(u, last, 0.0, darts_radius_, std::move(out));
}

GreedyMethod::GreedyMethod(const Options& options) : Method("greedy", options, Support{}) {
  gamma_ = options.real("gamma");
  darts_radius_ = options.real("darts-radius");
  require(gamma_ < 1, "greedy: gamma must be in [0, 1), got " + std::to_string(gamma_));
}

Estimate GreedyMethod::estimate(const BilevelProblem& p) const {
  Estimate e;
  e.buffer_bytes = 2 * state_bytes(p);
  e.gradient_equivalents = static_cast<double>(p.horizon) * (1 + one_step_equivalents(darts_radius_)) + 1;
  e.explain = "S_t and S_{t+1} at each step";
  return e;
}

MethodOutput GreedyMethod::run(Unroll& u, const Segment& seg) const {
  MethodOutput out;
  out.label = "greedy (gamma = " + std::to_string(gamma_) + ")";
  return greedy_sum(u, seg, gamma_, darts_radius_, std::move(out));
}

// ---- the one-step hypergradient (T1–T2) ---------------------------------------------------------

namespace detail {

Tensor one_step_indirect(Unroll& u, const InnerState& before, const Tensor& g, const Tensor& v, std::int64_t t,
                         double darts_radius) {
  InnerState adj;
  adj.parts.push_back(v);
  for (std::size_t i = 1; i < before.parts.size(); ++i)
    adj.parts.push_back(Tensor::zeros(before.parts[i].shape(), before.parts[i].dtype(), before.parts[i].device()));
  // ḡ and ∂Φ_t/∂θ^T v from the step tape.
  const StepVjp b = u.step_vjp(before, g, t, adj);
  Tensor h = b.adj_theta.clone();
  if (h.numel() == 0) return h;
  if (darts_radius <= 0) {
    // The exact mixed product ∂_θ(ḡ · ∇_w L_train(w_t)) (Luketina et al., Eq. 4's second term).
    axpy(h, 1.0, u.loss_pass(before.w(), t, b.adj_g, Tensor(), true).theta_tangent);
    return h;
  }
  // DARTS (Liu et al. 2019, Eq. 8): a central difference in weight space along ḡ.
  const double norm = std::sqrt(dot(b.adj_g, b.adj_g));
  if (norm == 0) return h;
  const double eps = darts_radius / norm;
  Tensor wp = before.w().clone(), wm = before.w().clone();
  axpy(wp, eps, b.adj_g);
  axpy(wm, -eps, b.adj_g);
  axpy(h, 0.5 / eps, u.theta_gradient(wp, t));
  axpy(h, -0.5 / eps, u.theta_gradient(wm, t));
  return h;
}

Tensor one_step_hypergradient(Unroll& u, const InnerState& before, const Tensor& g, const InnerState& after,
                              std::int64_t t, double darts_radius, double* val_loss) {
  // ∂_θ L_val(w_{t+1}) (the direct term) and v = ∇_w L_val(w_{t+1}).
  const Unroll::ValPass val = u.validation(after.w());
  if (val_loss) *val_loss = val.loss;
  Tensor h = val.grad_theta.clone();
  if (h.numel() > 0) axpy(h, 1.0, one_step_indirect(u, before, g, val.grad_w, t, darts_radius));
  return h;
}

}  // namespace detail

}  // namespace gradhpo::hpo
