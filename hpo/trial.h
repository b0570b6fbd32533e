// One record of a run that failed, shared by everything that runs trials: the outer loop (a
// rejected outer step), the searches (a diverged trial), the comparison harness and, later, the
// MPI layer. A failure is data, kept with the run's results, never only a line on stderr.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hyperparams.h"

namespace gradhpo::hpo {

struct FailedTrial {
  std::string method;             ///< the registry name of the method or search ("forward", "random")
  std::int64_t trial = -1;        ///< outer step, or trial index (−1: not known)
  std::int64_t inner_step = -1;   ///< inner step where training failed (−1: not known)
  /// The value that failed: the loss or the hypergradient entry that was NaN, inf or above the
  /// problem's bound (NaN when the failure is not about a value).
  double value = std::numeric_limits<double>::quiet_NaN();
  /// λ of every entry of θ the run was trained under, by entry name ("lr[3]", "momentum").
  std::vector<std::pair<std::string, double>> hyperparameters;
  std::string reason;             ///< the full message ("inner step 57: the training loss is nan ...")

  /// "forward, outer step 3, inner step 57: <reason>".
  std::string brief() const;
};

/// The record of a failure at θ: the hyperparameters read from θ through the groups' transforms.
FailedTrial failed_trial(const Hyperparameters& h, const Tensor& theta, std::string method, std::int64_t trial,
                         std::int64_t inner_step, double value, std::string reason);

}  // namespace gradhpo::hpo
