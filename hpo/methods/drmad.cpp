#include "drmad.h"

#include <chrono>

#include "backward.h"
#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

namespace {

/// (1 − β) a + β b, part by part.
InnerState on_line(const InnerState& a, const InnerState& b, double beta) {
  InnerState s;
  for (std::size_t i = 0; i < a.parts.size(); ++i) {
    Tensor p = a.parts[i].clone();
    axpy(p, -beta, a.parts[i]);
    axpy(p, beta, b.parts[i]);
    s.parts.push_back(std::move(p));
  }
  return s;
}

}  // namespace

Hypergradient drmad_hypergradient(const BilevelProblem& problem, const Tensor& theta, const Segment* segment) {
  const auto start = std::chrono::steady_clock::now();
  Unroll u(problem, theta);
  const Segment seg = detail::resolve(u, segment);
  Hypergradient out;
  out.method = "DrMAD (linear trajectory)";
  InnerState s = seg.start;
  report_progress("DrMAD", 0, 2 * seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {  // train, keeping only the ends
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    out.final_train_loss = lp.loss;
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("DrMAD", k + 1, 2 * seg.steps);
  }
  detail::Adjoint a = detail::start_backward(u, s, out);
  for (std::int64_t k = seg.steps; k-- > 0;) {
    const double beta = static_cast<double>(k) / static_cast<double>(seg.steps);
    const InnerState st = on_line(seg.start, s, beta);  // w(β), the approximate S_t
    const Tensor g = u.gradient(st.w(), seg.first + k).grad;
    detail::backward_step(u, st, g, seg.first + k, a);
    report_progress("DrMAD", 2 * seg.steps - k, 2 * seg.steps);
  }
  out.theta = u.theta_on_host();  // θ-sized results on the host, as the caller's θ
  out.d_theta = a.theta.to(Device::cpu);
  out.direct = out.direct.to(Device::cpu);
  out.d_w0 = a.state.parts[0];
  out.final_state = s;
  out.cost.peak_bytes = 3 * s.nbytes();  // S_0, S_T and the interpolated S_t (plus adjoints of S)
  out.cost.trajectory_bytes = 2 * s.nbytes();
  out.cost.directions = 1;
  out.cost.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  detail::record_counts(out.cost, u.counts);
  return out;
}

}  // namespace gradhpo::hpo
