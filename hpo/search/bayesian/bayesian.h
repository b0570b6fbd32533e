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
// Batched proposals (q > 1): each round chooses a batch of q points from the trials finished
// before it, by the constant liar of Ginsbourger, Le Riche & Carraro 2010 ("Kriging is
// well-suited to parallelize optimization", in Computational Intelligence in Expensive
// Optimization Problems, Springer; the "constant liar" heuristic, CL): choose a point by EI, pretend
// its result is a constant lie L, refit the GP with it, choose the next, q times; then the batch
// trains (together: over MPI ranks, hpo/mpi/search.h) and the real results replace the lies. We
// lie with L = the best validation loss finished so far (their CL[min]): the lie never improves
// on the incumbent, so EI keeps measuring improvement over a loss that was observed, and a lie
// at the incumbent's level collapses the GP's variance at the pending point, so the next EI peak
// moves away from it rather than choosing it again. Chosen over q-EI (their multi-points expected improvement), whose
// batch criterion is a q-dimensional integral without closed form past q = 2 (Monte Carlo,
// whose draws would have to be made as reproducible as the rest): the constant liar needs only
// the GP and EI we have. The batch is q points whatever the rank count, so the trials — and the
// SearchRun — are the same for 1 or N ranks; q = 1 is the sequential loop, bit for bit (every
// seed of a fit and of an acquisition derives from the trial's index). Within a round the
// decisions are made from the round's start: a Sobol point is taken while fewer than the initial
// design's have been, or while no trial has finished, and the GP's kernel parameters of each
// fit start from the previous fit's (a lie fit's included). A budget in seconds or work is read
// at a round's start: a round overshoots it by at most its q trials.
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
  int q = 1;                      ///< points proposed per round (constant liar); 1: sequential
  GpFitOptions fit;               ///< GP kernel fit (its seed is derived from `seed`)
  /// Throws Error naming the field: SearchOptions' checks, negative counts, q < 1, more box
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
