#include "hypergradient.h"

#include <sstream>

namespace gradhpo::hpo {

namespace {
std::string mb(std::size_t bytes) {
  std::ostringstream s;
  s.precision(3);
  s << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}
}  // namespace

std::string Cost::brief() const {
  std::ostringstream s;
  s.precision(3);
  s << seconds << " s, " << gradient_evals << " gradients, " << fwd_over_rev_passes << " fwd-over-rev";
  if (directions > 0) s << " (K = " << directions << ")";
  s << ", peak " << mb(peak_bytes);
  if (trajectory_bytes) s << " (trajectory " << mb(trajectory_bytes) << ")";
  if (info_buffer_bytes) s << " (information buffer " << mb(info_buffer_bytes) << ")";
  if (checkpoint_bytes) s << " (checkpoints " << mb(checkpoint_bytes) << ")";
  if (tangent_bytes) s << " (tangents " << mb(tangent_bytes) << ")";
  return s.str();
}

void accumulate(Cost& total, const Cost& part) {
  total.seconds += part.seconds;
  total.gradient_evals += part.gradient_evals;
  total.fwd_over_rev_passes += part.fwd_over_rev_passes;
  total.directions = std::max(total.directions, part.directions);
  total.step_passes += part.step_passes;
  total.trajectory_bytes = std::max(total.trajectory_bytes, part.trajectory_bytes);
  total.info_buffer_bytes = std::max(total.info_buffer_bytes, part.info_buffer_bytes);
  total.checkpoint_bytes = std::max(total.checkpoint_bytes, part.checkpoint_bytes);
  total.tangent_bytes = std::max(total.tangent_bytes, part.tangent_bytes);
  total.peak_bytes = std::max(total.peak_bytes, part.peak_bytes);
  total.info_bits_per_parameter_step = std::max(total.info_bits_per_parameter_step, part.info_bits_per_parameter_step);
}

namespace detail {

Segment resolve(const Unroll& u, const Segment* segment) {
  Segment s;
  if (segment) s = *segment;
  if (s.start.parts.empty()) s.start = u.initial_state();
  const std::int64_t T = u.horizon();
  if (s.steps < 0) s.steps = T - s.first;
  require(s.first >= 0 && s.steps >= 1 && s.first + s.steps <= T,
          "hypergradient: segment [" + std::to_string(s.first) + ", " + std::to_string(s.first + s.steps) +
              ") is not inside the horizon [0, " + std::to_string(T) + ")");
  require(static_cast<int>(s.start.parts.size()) == u.state_parts(),
          "hypergradient: the segment's start state has " + std::to_string(s.start.parts.size()) + " parts, the " +
              "optimizer needs " + std::to_string(u.state_parts()));
  return s;
}

void record_counts(Cost& cost, const PassCounts& c) {
  cost.gradient_evals = c.gradients;
  cost.fwd_over_rev_passes = c.fwd_over_rev;
  cost.step_passes = c.steps;
}

std::string adam_note(const BilevelProblem& p) {
  if (p.optimizer.kind != nn::OptimizerKind::adam) return {};
  return p.optimizer.eps_inside_sqrt
             ? "adam: denominator sqrt(v_hat + eps^2) (eps inside the square root: differentiable at v = 0)"
             : "adam: denominator sqrt(v_hat) + eps (PyTorch's form; sqrt's derivative taken as 0 where v = 0 exactly, the "
               "true derivative of the run)";
}

}  // namespace detail

}  // namespace gradhpo::hpo
