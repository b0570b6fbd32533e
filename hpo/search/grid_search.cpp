#include "grid_search.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <sstream>
#include <utility>

#include "../../data/random.h"

namespace gradhpo::hpo {

std::vector<std::vector<double>> grid_points(const std::vector<int>& sizes) {
  std::size_t total = 1;
  for (int k : sizes) {
    require(k >= 1, "grid search: " + std::to_string(k) + " points in a dimension (need >= 1)");
    total *= static_cast<std::size_t>(k);
    require(total <= (std::size_t{1} << 24), "grid search: more than 2^24 grid points");
  }
  std::vector<std::vector<double>> out;
  out.reserve(total);
  std::vector<int> index(sizes.size(), 0);
  for (std::size_t n = 0; n < total; ++n) {
    std::vector<double> u(sizes.size());
    for (std::size_t d = 0; d < sizes.size(); ++d)
      u[d] = sizes[d] == 1 ? 0.5 : static_cast<double>(index[d]) / (sizes[d] - 1);
    out.push_back(std::move(u));
    for (std::size_t d = sizes.size(); d-- > 0;) {  // odometer: the last dimension fastest
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

namespace {

/// The runs the inner-step or trial budget allows (0: none given, a seconds or work budget).
double budget_runs(const GridSearchOptions& o, std::int64_t horizon) {
  double runs = o.budget.inner_steps > 0 ? static_cast<double>(o.budget.inner_steps / horizon) : 0;
  if (o.budget.trials > 0) runs = runs > 0 ? std::min(runs, static_cast<double>(o.budget.trials)) : static_cast<double>(o.budget.trials);
  return runs;
}

/// Values per dimension: given, or the largest equal grid the inner-step budget fits.
std::vector<int> grid_sizes(const GridSearchOptions& o, std::size_t dims, std::int64_t horizon) {
  if (o.points.empty()) {
    const double runs = budget_runs(o, horizon);
    if (runs == 0) return {};  // sized by the first trial's cost
    int k = std::max(1, static_cast<int>(std::floor(std::pow(runs, 1.0 / static_cast<double>(dims)) + 1e-9)));
    while (std::pow(static_cast<double>(k), static_cast<double>(dims)) > runs && k > 1) --k;
    // Too many dimensions for two values each: two anyway, cut (in a random order) by the budget,
    // rather than one run at the centre and the rest of the budget unused.
    if (k == 1 && runs >= 2) k = 2;
    return std::vector<int>(dims, k);
  }
  require(o.points.size() == 1 || o.points.size() == dims,
          "grid search: " + std::to_string(o.points.size()) + " point counts for " + std::to_string(dims) +
              " dimensions (give one, or one per dimension)");
  return o.points.size() == 1 ? std::vector<int>(dims, o.points[0]) : o.points;
}

/// Points 1 … n−1 in a random order from the seed (data::shuffle_in_place: the same order with
/// every standard library); point 0 stays first.
void shuffle_after_first(std::vector<std::vector<double>>& points, std::uint64_t seed) {
  if (points.size() < 3) return;
  std::vector<std::vector<double>> rest(std::make_move_iterator(points.begin() + 1), std::make_move_iterator(points.end()));
  std::mt19937_64 rng(data::derive_seed(seed, 0));
  data::shuffle_in_place(rest, rng);
  std::move(rest.begin(), rest.end(), points.begin() + 1);
}

std::string size_label(const std::vector<int>& sizes) {
  std::ostringstream s;
  for (std::size_t d = 0; d < sizes.size(); ++d) s << (d ? " × " : "") << sizes[d];
  return s.str();
}

}  // namespace

void GridSearchOptions::validate(const BilevelProblem& problem) const {
  SearchOptions::validate(problem);
  const std::vector<int> sizes = grid_sizes(*this, box.size(), problem.horizon);
  if (!sizes.empty()) grid_points(sizes);
}

SearchRun grid_search(const BilevelProblem& problem, const GridSearchOptions& options) {
  options.validate(problem);
  TrialRunner runner(problem, options, "grid search");
  std::vector<int> sizes = grid_sizes(options, runner.box().size(), problem.horizon);
  std::size_t next = 0;
  double runs = budget_runs(options, problem.horizon);
  if (runs == 0) {
    // A seconds or work budget only: the grid's first point (the lower corner, when sized here
    // from 2 values per dimension up) is trained first, and its cost says how many runs fit,
    // which sizes the largest grid that fits (k^D runs) where no sizes were given.
    runner.run(sizes.empty() ? std::vector<double>(runner.box().size(), 0.0) : grid_points(sizes).front());
    next = 1;
    const double used = options.budget.seconds > 0 ? runner.seconds_used() : runner.work_used();
    const double limit = options.budget.seconds > 0 ? options.budget.seconds : options.budget.work;
    runs = used > 0 ? limit / used : 1.0;
    if (sizes.empty()) {
      int k = std::max(2, static_cast<int>(std::floor(std::pow(runs, 1.0 / static_cast<double>(runner.box().size())) + 1e-9)));
      while (k > 2 && std::pow(static_cast<double>(k), static_cast<double>(runner.box().size())) > (1 << 24)) --k;
      sizes.assign(runner.box().size(), k);
    }
  }
  std::vector<std::vector<double>> points = grid_points(sizes);
  if (static_cast<double>(points.size()) > std::floor(runs + 1e-9)) shuffle_after_first(points, options.seed);
  while (next < points.size() && runner.can_run()) runner.run(points[next++]);
  SearchRun run = runner.finish(next == points.size() ? "the grid is done (" + std::to_string(points.size()) + " points)" : "");
  run.method = "grid search (" + size_label(sizes) + ")";
  if (next < points.size())
    run.stop_reason += "; the grid was cut after " + std::to_string(next) + " of its " + std::to_string(points.size()) + " points";
  return run;
}

}  // namespace gradhpo::hpo
