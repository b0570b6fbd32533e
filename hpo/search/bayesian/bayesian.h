// Bayesian optimization (Snoek, Larochelle & Adams 2012, "Practical Bayesian Optimization of
// Machine Learning Algorithms", NeurIPS; Section 2 for the loop, Section 3.1–3.2 for the GP and
// expected improvement), with the settings Micaelli & Storkey report for their BO baseline
// (Appendix E: "Gaussian process with Matern 5/2 kernel, with expected improvement (EI) as the
// acquisition function, and using Sobol search for the first few arms", through Ax/BoTorch):
//
//   1. initial design: the first points of a Sobol sequence (GSL gsl_qrng_sobol), shifted by a
//      seeded random vector modulo 1 (Cranley–Patterson rotation) so that seeds differ;
//      max(5, 2D) of them by default, Ax's default number of Sobol arms;
//   2. then, while the budget lasts: fit the GP (gaussian_process.h: Matérn 5/2, kernel
//      parameters by maximum marginal likelihood with NLopt), maximize EI over the unit cube
//      (NLopt L-BFGS from the best of a seeded random candidate set), train there.
//
// A failed trial (diverged training) enters the GP at the worst validation loss seen so far, so
// that EI learns to avoid the region rather than revisiting it; before any trial has finished,
// the Sobol sequence simply goes on.
#pragma once

#include <cstdint>
#include <vector>

#include "gaussian_process.h"
#include "../trials.h"

namespace gradhpo::hpo {

struct BayesianOptions : SearchOptions {
  std::uint64_t seed = 0;
  int initial_points = 0;         ///< Sobol arms; 0: max(5, 2D)
  int acquisition_candidates = 0; ///< random points EI is evaluated at first; 0: 256 D
  int acquisition_starts = 5;     ///< best candidates that start an L-BFGS maximization of EI
  GpFitOptions fit;               ///< GP kernel fit (its seed is derived from `seed`)
  /// Throws Error naming the field: SearchOptions' checks, negative counts, more box
  /// dimensions than GSL's Sobol sequence has (40), fit bounds that are not 0 < min <= max.
  void validate(const BilevelProblem& problem) const;
};

SearchRun bayesian_optimization(const BilevelProblem& problem, const BayesianOptions& options);

/// n points of the D-dimensional Sobol sequence from GSL, rotated by a shift drawn from `seed`
/// (seed-for-seed reproducible). D must be within GSL's limit (40).
std::vector<std::vector<double>> sobol_design(int n, int dims, std::uint64_t seed);

/// The unit point in [0, 1]^D that maximizes EI(x; incumbent) for `gp`: EI at `candidates`
/// seeded uniform points, then NLopt's LD_LBFGS (bounded to the cube) from the `starts` best.
std::vector<double> maximize_expected_improvement(const GaussianProcess& gp, double incumbent, int candidates,
                                                  int starts, std::uint64_t seed);

}  // namespace gradhpo::hpo
