#include "register.h"

#include "bayesian.h"

namespace gradhpo::hpo {

namespace {

BayesianOptions bayesian_options(const SearchOptions& common, const Options& o) {
  BayesianOptions b;
  static_cast<SearchOptions&>(b) = common;
  b.seed = static_cast<std::uint64_t>(o.integer("seed"));
  b.initial_points = static_cast<int>(o.integer("initial-points"));
  b.acquisition_candidates = static_cast<int>(o.integer("acquisition-candidates"));
  b.acquisition_starts = static_cast<int>(o.integer("acquisition-starts"));
  b.q = static_cast<int>(o.integer("q"));
  return b;
}

}  // namespace

void register_bayesian_methods(Registry& r) {
  SearchEntry e;
  e.name = "bayesian";
  e.summary = "Bayesian optimization: a GP (Matérn 5/2) fitted to the trials, the next trial where expected improvement peaks";
  e.citation = "Snoek, Larochelle & Adams 2012, Sections 2, 3.1–3.2; Micaelli & Storkey 2020, Appendix E; batches of q: the constant liar of Ginsbourger, Le Riche & Carraro 2010";
  e.options = {
      OptionSpec::integer("seed", 0, 0, std::int64_t{1} << 53, "seed of the Sobol shift, the acquisition's candidates and the GP fit"),
      OptionSpec::integer("initial-points", 0, 0, 1 << 20, "Sobol points before the GP takes over (0: max(5, 2D))"),
      OptionSpec::integer("acquisition-candidates", 0, 0, 1 << 24, "random points EI is evaluated at first (0: 256 D)"),
      OptionSpec::integer("acquisition-starts", 5, 0, 1 << 20, "best candidates that start an L-BFGS maximization of EI"),
      OptionSpec::integer("q", 1, 1, 1 << 20,
                          "points proposed per round, chosen by the constant liar (lie: the best loss so far) and "
                          "trained together, over MPI ranks under --distribute trials; 1: one at a time"),
  };
  e.validate = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    bayesian_options(common, o).validate(p);
  };
  e.run = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    return named_failures(bayesian_optimization(p, bayesian_options(common, o)), "bayesian");
  };
  r.add(std::move(e));
}

}  // namespace gradhpo::hpo
