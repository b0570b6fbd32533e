#include "random_search.h"

#include "../../data/random.h"

namespace gradhpo::hpo {

double unit_uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

SearchRun random_search(const BilevelProblem& problem, const RandomSearchOptions& options) {
  TrialRunner runner(problem, options, "random search (seed " + std::to_string(options.seed) + ")");
  std::mt19937_64 rng(data::derive_seed(options.seed, 0));
  std::vector<double> u(runner.box().size());
  while (runner.can_run()) {
    for (double& x : u) x = unit_uniform(rng);
    runner.run(u);
  }
  return runner.finish();
}

}  // namespace gradhpo::hpo
