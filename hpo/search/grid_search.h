// Grid search: every combination of k_d evenly spaced values per dimension (both bounds
// included; log-spaced on a log-scale dimension), trained once each — the baseline that
// Bergstra & Bengio 2012 compare random search against, and the "hand-tuned" sweep of
// Micaelli & Storkey (Appendix D) when the box is a few values around common settings.
//
// Points are visited in lexicographic order, the last dimension fastest. With no sizes given,
// the grid is the largest k^D that the inner-step (or trial) budget fits (floor((B/T)^(1/D))
// values per dimension, at least 2 where the budget has two runs); with a seconds or work budget
// only, the lower corner is trained first and its cost c sizes the grid (k = floor((B/c)^(1/D)),
// at least 2). A grid the budget cannot finish (many dimensions: 2^11 points for ten runs;
// sizes too large for the budget) is visited after its first point in a seeded random order, so
// that the points it reaches spread over the whole grid rather than the lexicographic corner
// that varies only the last dimensions; the stop reason says how many of its points were trained.
#pragma once

#include <cstdint>
#include <vector>

#include "trials.h"

namespace gradhpo::hpo {

struct GridSearchOptions : SearchOptions {
  /// Values per dimension: one number for every dimension, or one per dimension; empty: from
  /// the budget.
  std::vector<int> points;
  /// The order of a grid the budget cuts short (the same seed: the same points, in the same order).
  std::uint64_t seed = 0;
  /// Throws Error naming the field: SearchOptions' checks, a count per dimension that does
  /// not match the box, a count < 1.
  void validate(const BilevelProblem& problem) const;
};

SearchRun grid_search(const BilevelProblem& problem, const GridSearchOptions& options);

/// The grid's unit points in visiting order: for sizes k_d, coordinate i/(k_d − 1) (0.5 when
/// k_d = 1).
std::vector<std::vector<double>> grid_points(const std::vector<int>& sizes);

}  // namespace gradhpo::hpo
