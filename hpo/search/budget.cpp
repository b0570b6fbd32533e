#include "budget.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

namespace gradhpo::hpo {

void Budget::validate(std::int64_t horizon) const {
  require(inner_steps >= 0, "budget: inner_steps must be >= 0 (0: no limit), got " + std::to_string(inner_steps));
  require(std::isfinite(seconds) && seconds >= 0, "budget: seconds must be finite and >= 0 (0: no limit)");
  require(std::isfinite(work) && work >= 0, "budget: work must be finite and >= 0 (0: no limit)");
  require(trials >= 0, "budget: trials must be >= 0 (0: no limit), got " + std::to_string(trials));
  require(inner_steps > 0 || seconds > 0 || work > 0 || trials > 0,
          "budget: a budget of zero — set inner_steps (inner training steps), seconds (wall time), work (plain-step "
          "equivalents) or trials, or several");
  require(inner_steps == 0 || inner_steps >= horizon,
          "budget: " + std::to_string(inner_steps) + " inner steps do not fit one training run of T = " +
              std::to_string(horizon) + " steps");
  require(work == 0 || (std::isfinite(work_per_step) && work_per_step > 0),
          "budget: a work budget needs work_per_step (one plain inner step's engine work) > 0; the comparison measures it");
}

namespace {

std::string short_number(double v) {
  std::ostringstream s;
  s.precision(3);
  if (v >= 1e6) s << v / 1e6 << "M";
  else if (v >= 1e4) s << v / 1e3 << "k";
  else s << v;
  return s.str();
}

}  // namespace

std::string Budget::describe() const {
  std::vector<std::string> parts;
  if (trials > 0) parts.push_back("exactly " + std::to_string(trials) + " trials");
  if (inner_steps > 0) parts.push_back(std::to_string(inner_steps) + " inner steps");
  if (seconds > 0) parts.push_back(short_number(seconds) + " s");
  if (work > 0) parts.push_back(short_number(work) + " plain-step equivalents of work");
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? " or " : "") + parts[i];
  return s;
}

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

BudgetClock& current_clock() {
  static BudgetClock clock = steady_seconds;
  return clock;
}

}  // namespace

ScopedBudgetClock::ScopedBudgetClock(BudgetClock clock) : previous_(std::move(current_clock())) {
  current_clock() = std::move(clock);
}
ScopedBudgetClock::~ScopedBudgetClock() { current_clock() = std::move(previous_); }

double budget_clock_now() { return current_clock()(); }

double work_in_steps(const WorkCount& used, double work_per_step) {
  return work_per_step > 0 ? used.total() / work_per_step : 0.0;
}

BudgetMeter::BudgetMeter(Budget budget) : budget_(budget), start_(budget_clock_now()), work_start_(work_count()) {}

double BudgetMeter::seconds() const { return budget_clock_now() - start_; }

double BudgetMeter::work() const {
  return work_in_steps(work_count() - work_start_ + replayed_, budget_.work_per_step);
}

bool BudgetMeter::can_start(std::int64_t steps) const {
  if (budget_.trials > 0 && units_ >= budget_.trials) return false;
  if (budget_.inner_steps > 0 && steps_used_ + steps > budget_.inner_steps) return false;
  if (budget_.seconds > 0 && seconds() >= budget_.seconds) return false;
  if (budget_.work > 0 && work() >= budget_.work) return false;
  return true;
}

std::string BudgetMeter::exhausted_reason(std::int64_t steps) const {
  std::ostringstream s;
  if (budget_.trials > 0 && units_ >= budget_.trials)
    s << "trial budget: exactly " << budget_.trials << " run";
  else if (budget_.inner_steps > 0 && steps_used_ + steps > budget_.inner_steps)
    s << "inner-step budget: " << steps_used_ << " of " << budget_.inner_steps << " used (a run is " << steps << ")";
  else if (budget_.work > 0 && work() >= budget_.work)
    s << "work budget: " << short_number(work()) << " of " << short_number(budget_.work) << " plain-step equivalents used";
  else
    s << "time budget: " << seconds() << " s of " << budget_.seconds << " s used";
  return s.str();
}

}  // namespace gradhpo::hpo
