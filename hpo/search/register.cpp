// The black-box searches' registry entries (registry.h, "search"): random and grid search. Each
// takes the common SearchOptions (box, budget, max trials) and declares its own options once.
#include <cmath>

#include "../registry.h"
#include "grid_search.h"
#include "random_search.h"

namespace gradhpo::hpo {

namespace {

RandomSearchOptions random_options(const SearchOptions& common, const Options& o) {
  RandomSearchOptions r;
  static_cast<SearchOptions&>(r) = common;
  r.seed = static_cast<std::uint64_t>(o.integer("seed"));
  return r;
}

GridSearchOptions grid_options(const SearchOptions& common, const Options& o) {
  GridSearchOptions g;
  static_cast<SearchOptions&>(g) = common;
  for (double k : o.reals("points-per-dimension")) {
    require(k >= 1 && k == std::floor(k) && k <= (1 << 24),
            o.who() + ": option 'points-per-dimension' has " + std::to_string(k) + ", not a whole number >= 1");
    g.points.push_back(static_cast<int>(k));
  }
  g.seed = static_cast<std::uint64_t>(o.integer("seed"));
  return g;
}

SearchEntry random_entry() {
  SearchEntry e;
  e.name = "random";
  e.summary = "random search: independent uniform draws from the box (log-uniform on a log scale), each trained once";
  e.citation = "Bergstra & Bengio 2012, JMLR 13, Section 2";
  e.options = {OptionSpec::integer("seed", 0, 0, std::int64_t{1} << 53, "seed of the draws (the same seed: the same candidates)")};
  e.validate = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) { random_options(common, o).validate(p); };
  e.run = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    return named_failures(random_search(p, random_options(common, o)), "random");
  };
  return e;
}

SearchEntry grid_entry() {
  SearchEntry e;
  e.name = "grid";
  e.summary = "grid search: every combination of evenly spaced values per dimension (log-spaced on a log scale)";
  e.citation = "the baseline of Bergstra & Bengio 2012; Micaelli & Storkey 2020, Appendix D";
  e.options = {OptionSpec::reals("points-per-dimension", {}, 1, 1 << 24,
                                 "values per dimension: one count for every dimension, or one per dimension "
                                 "(none: the largest k^D grid the inner-step budget fits)"),
               OptionSpec::integer("seed", 0, 0, std::int64_t{1} << 53,
                                   "order of a grid the budget cuts short (visited in a random order after its first point)")};
  e.validate = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) { grid_options(common, o).validate(p); };
  e.run = [](const BilevelProblem& p, const SearchOptions& common, const Options& o) {
    return named_failures(grid_search(p, grid_options(common, o)), "grid");
  };
  return e;
}

}  // namespace

void register_search_methods(Registry& r) {
  r.add(random_entry());
  r.add(grid_entry());
}

}  // namespace gradhpo::hpo
