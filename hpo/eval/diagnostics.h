// Hypervariance and sign fluctuation (Micaelli & Storkey, Section 5.1).
//
// Perturb one factor of the problem at a time, P times, keeping the others fixed:
//   train_order      a different seed for the order of the training batches
//   val_sample       a different seed for the validation sample
//   init_weights     a different seed for w₀
//   hyperparameters  each λ multiplied by (1 + 0.01 u), u uniform in [−1, 1] ("±1% of their value")
// and compute the hypergradient each time. Per hyperparameter n,
//   hypervariance_n   = std_n / |mean_n|          (a unitless inverse signal-to-noise ratio)
//   sign fluctuation_n = min(P₊, P₋) / P           (0: the sign never changes; 0.5: a coin)
// Comparing a problem with a shared schedule against one value per step shows what sharing buys.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "../method.h"
#include "../outer.h"

namespace gradhpo::hpo {

enum class Factor : std::uint8_t { train_order, val_sample, init_weights, hyperparameters };
const char* factor_name(Factor f);

/// Builds the problem with perturbation `index` (1..P) of `factor`; index 0 is unperturbed.
/// (The hyperparameter factor never calls it with index > 0: θ itself is perturbed.)
using ProblemFactory = std::function<BilevelProblem(Factor factor, int index)>;

struct HypergradientSpread {
  std::vector<double> mean, std, hypervariance, sign_fluctuation;  // per hyperparameter
  double mean_hypervariance = 0;    ///< averaged over hyperparameters
  double mean_sign_fluctuation = 0;
};
/// The statistics of P hypergradients (rows), per hyperparameter.
HypergradientSpread spread_of(const std::vector<std::vector<double>>& samples);

struct HypervarianceRow {
  Factor factor;
  HypergradientSpread spread;
  std::vector<std::vector<double>> samples;  ///< the P hypergradients
  double seconds = 0;
};

/// The hypervariance of `method` at θ for each factor in `factors`, P perturbations each.
std::vector<HypervarianceRow> hypervariance(const ProblemFactory& factory, const Tensor& theta, const Method& method,
                                            int perturbations, const std::vector<Factor>& factors, std::uint64_t seed = 0);

/// One hypergradient of hypervariance(): `method` at factory(factor, index) and θ (perturbed for
/// the hyperparameter factor). Each depends on nothing but these, so they may be computed
/// anywhere, in any order (hpo/mpi/hypervariance.h: one task each over MPI ranks).
struct Perturbation {
  Factor factor;
  int index = 0;
  Tensor theta;  ///< float64 [N]
};
/// Every perturbation of hypervariance(), factor by factor, P each (the θ draws are made here).
std::vector<Perturbation> perturbations_of(const ProblemFactory& factory, const Tensor& theta, int perturbations,
                                           const std::vector<Factor>& factors, std::uint64_t seed);
/// One perturbation's hypergradient and the seconds it took (its problem built, then computed).
struct PerturbationSample {
  std::vector<double> d_theta;
  double seconds = 0;
};
PerturbationSample sample_perturbation(const ProblemFactory& factory, const Method& method, const Perturbation& p);
/// The rows of hypervariance() from every perturbation's sample, in perturbations_of's order;
/// a row's seconds are the sum of its samples'.
std::vector<HypervarianceRow> hypervariance_rows(const std::vector<Perturbation>& perturbations,
                                                 const std::vector<PerturbationSample>& samples);


}  // namespace gradhpo::hpo
