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


}  // namespace gradhpo::hpo
