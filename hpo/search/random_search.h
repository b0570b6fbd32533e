// Random search (Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization",
// JMLR 13): independent draws from the uniform distribution over the box (log-uniform on a
// log-scale dimension), each trained once; the best validation loss wins. Its strength over a
// grid (their Section 2, Figure 1): when few dimensions matter, n random trials try n distinct
// values of each, where a grid tries only n^(1/D).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "trials.h"

namespace gradhpo::hpo {

struct RandomSearchOptions : SearchOptions {
  std::uint64_t seed = 0;
};

/// Trials until the budget (or max_trials) is used. The draws depend only on the seed and the
/// number of dimensions: the same seed gives the same candidates, in the same order.
SearchRun random_search(const BilevelProblem& problem, const RandomSearchOptions& options);

/// A uniform double in [0, 1) from 53 random bits: the same numbers from every standard library
/// (std::uniform_real_distribution's algorithm is unspecified).
double unit_uniform(std::mt19937_64& rng);

}  // namespace gradhpo::hpo
