#include "budget.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace gradhpo::hpo {

void Budget::validate(std::int64_t horizon) const {
  require(inner_steps >= 0, "budget: inner_steps must be >= 0 (0: no limit), got " + std::to_string(inner_steps));
  require(std::isfinite(seconds) && seconds >= 0, "budget: seconds must be finite and >= 0 (0: no limit)");
  require(inner_steps > 0 || seconds > 0,
          "budget: a budget of zero — set inner_steps (inner training steps) or seconds (wall time), or both");
  require(inner_steps == 0 || inner_steps >= horizon,
          "budget: " + std::to_string(inner_steps) + " inner steps do not fit one training run of T = " +
              std::to_string(horizon) + " steps");
}

std::string Budget::describe() const {
  std::ostringstream s;
  if (inner_steps > 0) s << inner_steps << " inner steps";
  if (inner_steps > 0 && seconds > 0) s << " or ";
  if (seconds > 0) s << seconds << " s";
  return s.str();
}

BudgetMeter::BudgetMeter(Budget budget) : budget_(budget), start_(std::chrono::steady_clock::now()) {}

double BudgetMeter::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool BudgetMeter::can_start(std::int64_t steps) const {
  if (budget_.inner_steps > 0 && steps_used_ + steps > budget_.inner_steps) return false;
  if (budget_.seconds > 0 && seconds() >= budget_.seconds) return false;
  return true;
}

std::string BudgetMeter::exhausted_reason(std::int64_t steps) const {
  std::ostringstream s;
  if (budget_.inner_steps > 0 && steps_used_ + steps > budget_.inner_steps)
    s << "inner-step budget: " << steps_used_ << " of " << budget_.inner_steps << " used (a run is " << steps << ")";
  else
    s << "time budget: " << seconds() << " s of " << budget_.seconds << " s used";
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

}  // namespace gradhpo::hpo
