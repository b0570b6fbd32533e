#include "schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "../engine/error.h"

namespace gradhpo::nn {

Schedule Schedule::constant(double value) {
  Schedule s;
  s.base_ = value;
  return s;
}

Schedule Schedule::step(double value, std::int64_t every, double gamma) {
  require(every > 0, "step schedule: period must be positive, got " + std::to_string(every));
  Schedule s;
  s.kind_ = Kind::step;
  s.base_ = value;
  s.every_ = every;
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::multistep(double value, std::vector<std::int64_t> milestones, double gamma) {
  Schedule s;
  s.kind_ = Kind::multistep;
  s.base_ = value;
  std::sort(milestones.begin(), milestones.end());
  s.milestones_ = std::move(milestones);
  s.gamma_ = gamma;
  return s;
}

Schedule Schedule::cosine(double value, std::int64_t total_steps, double min_value) {
  require(total_steps > 0, "cosine schedule: total steps must be positive, got " + std::to_string(total_steps));
  Schedule s;
  s.kind_ = Kind::cosine;
  s.base_ = value;
  s.every_ = total_steps;
  s.min_ = min_value;
  return s;
}

Schedule Schedule::table(std::vector<double> values) {
  require(!values.empty(), "table schedule: no values");
  Schedule s;
  s.kind_ = Kind::table;
  s.base_ = values.front();
  s.values_ = std::move(values);
  return s;
}

double Schedule::at(std::int64_t t) const {
  require(t >= 0, "Schedule::at: negative step " + std::to_string(t));
  switch (kind_) {
    case Kind::constant: return base_;
    case Kind::step: return base_ * std::pow(gamma_, static_cast<double>(t / every_));
    case Kind::multistep: {
      const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
      return base_ * std::pow(gamma_, static_cast<double>(passed));
    }
    case Kind::cosine: {
      if (t >= every_) return min_;
      const double c = std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(every_));
      return min_ + 0.5 * (base_ - min_) * (1.0 + c);
    }
    case Kind::table: return values_[static_cast<std::size_t>(std::min<std::int64_t>(t, values_.size() - 1))];
  }
  return base_;
}

std::string Schedule::describe() const {
  std::ostringstream o;
  o << std::defaultfloat;
  switch (kind_) {
    case Kind::constant: o << "constant " << base_; break;
    case Kind::step: o << base_ << " x " << gamma_ << " every " << every_ << " steps"; break;
    case Kind::multistep: {
      o << base_ << " x " << gamma_ << " at steps";
      for (std::size_t i = 0; i < milestones_.size(); ++i) o << (i ? "," : " ") << milestones_[i];
      break;
    }
    case Kind::cosine: o << "cosine " << base_ << " -> " << min_ << " over " << every_ << " steps"; break;
    case Kind::table: o << "table of " << values_.size() << " values from " << base_; break;
  }
  return o.str();
}

void Schedule::validate(const std::string& what) const {
  auto finite_nonneg = [&](double v, const char* which) {
    require(std::isfinite(v), what + ": " + which + " is " + std::to_string(v) + " (must be a finite number)");
    require(v >= 0, what + ": " + which + " is " + std::to_string(v) + " (must be >= 0)");
  };
  finite_nonneg(base_, "value");
  if (kind_ == Kind::step || kind_ == Kind::multistep) finite_nonneg(gamma_, "decay factor");
  if (kind_ == Kind::cosine) finite_nonneg(min_, "final value");
  for (std::size_t i = 0; i < values_.size(); ++i) finite_nonneg(values_[i], ("value " + std::to_string(i)).c_str());
}

Schedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return Schedule::Kind::constant;
  if (name == "step") return Schedule::Kind::step;
  if (name == "multistep") return Schedule::Kind::multistep;
  if (name == "cosine") return Schedule::Kind::cosine;
  throw Error("unknown schedule '" + name + "' (expected constant, step, multistep or cosine)");
}

}  // namespace gradhpo::nn
