// Per-step schedules for an optimizer hyperparameter (usually the learning rate).
//
// A schedule maps a step index t = 0, 1, ... to a value. The kinds mirror PyTorch's schedulers
// evaluated once per optimizer step:
//   constant    η
//   step        η γ^⌊t / every⌋                                 (StepLR)
//   multistep   η γ^(number of milestones ≤ t)                  (MultiStepLR)
//   cosine      η_min + ½ (η − η_min)(1 + cos(π t / T)), t ≥ T: η_min   (CosineAnnealingLR)
//   table       values[t] (the last value after the end): any schedule, e.g. one that hpo/
//               learns, one value per step or shared over blocks of steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradhpo::nn {

class Schedule {
 public:
  enum class Kind : std::uint8_t { constant, step, multistep, cosine, table };

  Schedule() = default;
  static Schedule constant(double value);
  static Schedule step(double value, std::int64_t every, double gamma);
  static Schedule multistep(double value, std::vector<std::int64_t> milestones, double gamma);
  static Schedule cosine(double value, std::int64_t total_steps, double min_value = 0.0);
  static Schedule table(std::vector<double> values);

  /// The value at step t >= 0.
  double at(std::int64_t t) const;
  Kind kind() const { return kind_; }
  double base() const { return base_; }
  /// E.g. "cosine 0.1 -> 0 over 2000 steps".
  std::string describe() const;
  /// Throws Error (prefixed with `what`, e.g. "learning rate") unless every parameter is finite
  /// and the values are >= 0.
  void validate(const std::string& what) const;

 private:
  Kind kind_ = Kind::constant;
  double base_ = 0.0;
  double gamma_ = 1.0;
  double min_ = 0.0;
  std::int64_t every_ = 1;  // step: period; cosine: total steps
  std::vector<std::int64_t> milestones_;
  std::vector<double> values_;
};

/// Kind names for the command line: "constant", "step", "multistep", "cosine".
Schedule::Kind parse_schedule_kind(const std::string& name);

}  // namespace gradhpo::nn
