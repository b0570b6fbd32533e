#include "hyperdistill.h"

#include <cmath>

#include "../methods/drmad.h"
#include "../methods/one_step.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

double ema_coefficient(double gamma, std::int64_t t) {
  require(t >= 1, "ema_coefficient: t must be >= 1");
  return gamma * (1 - std::pow(gamma, static_cast<double>(t - 1))) / (1 - std::pow(gamma, static_cast<double>(t)));
}

double distill_scale(double gamma, std::int64_t t, double theta) {
  return theta * (1 - std::pow(gamma, static_cast<double>(t))) / (1 - gamma);
}

double fit_distillation_scale(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  require(x.size() == y.size() && !x.empty(), "fit_distillation_scale: needs matching, non-empty samples");
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += dot(x[i], y[i]);
    den += dot(x[i], x[i]);
  }
  return den > 0 ? num / den : 1.0;
}

HyperDistill::HyperDistill(const BilevelProblem& problem, OuterOptions outer, HyperDistillOptions options)
    : OnlineMethod(problem, std::move(outer)), options_(options) {
  require(options_.gamma >= 0 && options_.gamma < 1, "hyperdistill: gamma must be in [0, 1)");
  require(options_.fit_every >= 0, "hyperdistill: fit_every must be >= 0");
}

std::pair<std::size_t, std::string> HyperDistill::extra_buffers() const {
  const std::size_t P = static_cast<std::size_t>(problem_->num_params()), sz = dtype_size(problem_->dtype());
  const std::size_t state = (problem_->optimizer.kind == nn::OptimizerKind::adam ? 3 : 2) * P * sz;
  if (options_.fit_every == 0) return {P * sz, "w* (P numbers)"};
  return {P * sz + state + 3 * state, "w* (P numbers), the fit window's S and DrMAD's S_0, S_T, S_t"};
}

Tensor HyperDistill::step_hypergradient(Unroll& u, BilevelState& s, const InnerState& before, const Tensor& /*g_t*/,
                                        const InnerState& after, double& val_loss) {
  const std::int64_t t = s.step + 1;  // steps taken once this one is done
  // w*_t = p_t w*_{t−1} + (1 − p_t) w_{t−1}: the average point, over w_0 .. w_{t−1} = before.
  Tensor& w_star = s.extra["w_star"];
  w_star = w_star.to(before.w().device());  // host memory after load_state
  if (!w_star.defined()) {
    w_star = before.w().clone();
  } else {
    const double p = ema_coefficient(options_.gamma, t);
    Tensor next = w_star.clone();
    axpy(next, -(1 - p), w_star);
    axpy(next, 1 - p, before.w());
    w_star = next;
  }
  Tensor& fit = s.extra["theta_fit"];  // [θ, Σ x·y, Σ x·x]
  if (!fit.defined()) fit = Tensor::from({1.0, 0.0, 0.0}, Shape{3}, DType::f64);

  // g^FO and v_t at w_{t+1}.
  const Unroll::ValPass val = u.validation(after.w());
  val_loss = val.loss;
  // f(w*_t, D_t): the one Jacobian product, at the averaged weights.
  InnerState star = before;
  star.parts[0] = w_star;
  // θ-sized vectors on the host; w*_t and the weights stay on w's device.
  const Tensor f = detail::one_step_indirect(u, star, u.gradient(w_star, s.step).grad, val.grad_w, s.step, 0)
                       .to(Device::cpu)
                       .to(DType::f64);
  const double pi = distill_scale(options_.gamma, t, fit.at(0));
  Tensor h = val.grad_theta.to(Device::cpu).to(DType::f64).clone();
  axpy(h, pi, f);

  // Every fit_every steps: regress π f on a DrMAD estimate of the second-order term over the
  // window that just ended (from the state stored at its start).
  if (options_.fit_every > 0) {
    if (!s.extra.count("window_w")) s.extra["window_w"] = before.w().clone();
    for (std::size_t i = 1; i < before.parts.size(); ++i)
      if (!s.extra.count("window_s" + std::to_string(i))) s.extra["window_s" + std::to_string(i)] = before.parts[i].clone();
    if (t % options_.fit_every == 0) {
      Segment seg;
      const Device dev = before.w().device();  // the window's start may come from load_state (host)
      seg.start.parts.push_back(s.extra["window_w"].to(dev));
      for (std::size_t i = 1; i < before.parts.size(); ++i)
        seg.start.parts.push_back(s.extra["window_s" + std::to_string(i)].to(dev));
      seg.first = t - options_.fit_every;
      seg.steps = options_.fit_every;
      const Hypergradient est = DrmadMethod(Options(OptionSpecs{}, "drmad")).compute(u.problem(), u.theta(), &seg);
      Tensor y = est.d_theta.to(DType::f64).clone();
      axpy(y, -1.0, est.direct.to(DType::f64));  // its second-order part
      Tensor x = f.clone();
      for (std::int64_t i = 0; i < x.numel(); ++i) x.flat_slice(i, 1).fill(x.at(i) * distill_scale(options_.gamma, t, 1.0));
      const double num = fit.at(1) + dot(x, y), den = fit.at(2) + dot(x, x);
      fit = Tensor::from({den > 0 ? num / den : 1.0, num, den}, Shape{3}, DType::f64);
      s.extra.erase("window_w");
      for (std::size_t i = 1; i < before.parts.size(); ++i) s.extra.erase("window_s" + std::to_string(i));
    }
  }
  return h;
}

}  // namespace gradhpo::hpo
