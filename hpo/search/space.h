// The box a black-box search explores: per hyperparameter entry (or per whole group), a lower and
// an upper bound on the value λ that training uses, optionally on a log scale.
//
// Searches work in the unit cube: coordinate u ∈ [0, 1] of dimension d is
//     λ = lower + u (upper − lower)                       (linear)
//     λ = exp(log lower + u (log upper − log lower))      (log scale; Bergstra & Bengio 2012
//                                                          sample learning rates this way)
// and the candidate θ is the problem's initial θ₀ with each dimension's entries replaced by the
// group's inverse transform of λ (hypergradient methods and searches share one θ, so a search's
// result can seed an outer loop and vice versa). Entries not in the box keep their θ₀ value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../hyperparams.h"

namespace gradhpo::hpo {

struct Dimension {
  /// An entry of θ by its name ("lr[2]", "l2[fc1]", "momentum"; Hyperparameters::entry_name), or
  /// a whole group by its name ("lr": every entry of the group takes the same value).
  std::string target;
  double lower = 0, upper = 0;  ///< bounds on λ, inclusive
  bool log_scale = false;       ///< uniform in log λ (both bounds must be > 0)
};

/// A box checked against a problem's hyperparameters: the one place where search options on
/// the box are validated.
class Box {
 public:
  /// Throws Error naming the dimension for: an empty box, a NaN or infinite bound, lower >
  /// upper, log scale with a bound <= 0, a target that is no entry or group, two dimensions on
  /// one entry, a bound outside the group's range (Hyperparameters::range: its kind's valid range
  /// — a learning rate, weight decay or L2 below 0, a momentum of 1 or more, example weights
  /// outside [0, 1] — or the user's box on the group), or a bound outside the group transform's
  /// range (exp/softplus: λ > 0; sigmoid: 0 < λ < 1). `base` is θ for the entries outside the box
  /// (default: the initial values).
  Box(const Hyperparameters& hyper, std::vector<Dimension> dimensions, Tensor base = Tensor());

  std::size_t size() const { return dims_.size(); }
  const Dimension& dimension(std::size_t d) const { return dims_.at(d); }
  /// λ of dimension d at unit coordinate u.
  double value(std::size_t d, double u) const;
  /// λ of every dimension at the unit point u [size()].
  std::vector<double> values(const std::vector<double>& u) const;
  /// θ [N] (float64) for the unit point u.
  Tensor theta(const std::vector<double>& u) const;
  /// "lr = 0.3, momentum = 0.9": the box's values at u, by target name.
  std::string describe(const std::vector<double>& u) const;

 private:
  const Hyperparameters* hyper_;
  std::vector<Dimension> dims_;
  std::vector<std::vector<std::int64_t>> entries_;  // the flat θ indices each dimension sets
  std::vector<double> base_;
};

}  // namespace gradhpo::hpo
