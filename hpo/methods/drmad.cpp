#include "drmad.h"

#include "backward.h"
#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

InnerState drmad_on_line(const InnerState& a, const InnerState& b, double beta) {
  InnerState s;
  for (std::size_t i = 0; i < a.parts.size(); ++i) {
    Tensor p = a.parts[i].clone();
    axpy(p, -beta, a.parts[i]);
    axpy(p, beta, b.parts[i]);
    s.parts.push_back(std::move(p));
  }
  return s;
}

DrmadMethod::DrmadMethod(const Options& options) : Method("drmad", options, Support{}) {}

Estimate DrmadMethod::estimate(const BilevelProblem& p) const {
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  const std::size_t state = parts * static_cast<std::size_t>(p.num_params()) * dtype_size(p.dtype());
  Estimate e;
  e.buffer_bytes = 3 * state;
  const double T = static_cast<double>(p.horizon);
  e.gradient_equivalents = T + T + 4 * T + 1;  // training, g at the line's points, H·v per step, L_val
  e.explain = "S_0, S_T and the interpolated S_t (" + std::to_string(parts) + " x P numbers each)";
  return e;
}

MethodOutput DrmadMethod::run(Unroll& u, const Segment& seg) const {
  MethodOutput out;
  out.label = "DrMAD (linear trajectory)";
  InnerState s = seg.start;
  report_progress("DrMAD", 0, 2 * seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {  // train, keeping only the ends
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    out.final_train_loss = lp.loss;
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("DrMAD", k + 1, 2 * seg.steps);
  }
  detail::Adjoint a = detail::start_backward(u, s);
  for (std::int64_t k = seg.steps; k-- > 0;) {
    const double beta = static_cast<double>(k) / static_cast<double>(seg.steps);
    const InnerState st = drmad_on_line(seg.start, s, beta);  // w(β), the approximate S_t
    const Tensor g = u.gradient(st.w(), seg.first + k).grad;
    detail::backward_step(u, st, g, seg.first + k, a);
    report_progress("DrMAD", 2 * seg.steps - k, 2 * seg.steps);
  }
  out.val_loss = a.val_loss;
  out.d_theta = std::move(a.theta);
  out.direct = std::move(a.direct);
  out.d_w0 = a.state.parts[0];
  out.final_state = s;
  out.cost.peak_bytes = 3 * s.nbytes();  // S_0, S_T and the interpolated S_t (plus adjoints of S)
  out.cost.trajectory_bytes = 2 * s.nbytes();
  out.cost.directions = 1;
  return out;
}

}  // namespace gradhpo::hpo
