// The baselines Micaelli & Storkey compare their learned schedules with, as comparison entries
// (compare.h) on a learning-rate-schedule problem ("lr" in blocks over the horizon, and
// optionally "momentum" and "weight_decay"; tasks/experiments.h, "schedule"):
//   cosine              the hand-tuned baseline (Appendix D): the literature's most common setting
//                       and values around it, every combination trained once, the best by
//                       validation loss. For MNIST and SVHN Appendix D says "the most popular
//                       learning rate schedules used for these datasets seem to be the cosine
//                       annealing one. We evaluate this schedule for α0 = {0.05, 0.1, 0.2, 0.4, 0.6}
//                       and select the best hyperparameters based on validation performance", having
//                       "observed no gain from using momentum and weight decay": the default grid,
//                       momentum and weight decay 0. Its CIFAR-10 grid also varies the momentum
//                       ({0.45, 0.9, 0.99}) and weight decay ({2.5e-4, 5e-4, 1e-3}): CosineGrid
//                       takes those lists too.
//   hypergradient descent on a schedule   Baydin et al.'s method as Micaelli & Storkey ran it
//                       against their schedules (Section 5.2): from initial values drawn from the
//                       search range it learns one global learning rate online, momentum and
//                       weight decay held
// Each point is a trial of a TrialRunner (search/trials.h): one training run of T inner steps
// charged per point, the row its best point.
#pragma once

#include <cstdint>
#include <vector>

#include "compare.h"

namespace gradhpo::hpo {

/// The hand-tuned grid: every (α₀, momentum, weight decay) combination, α₀ varying fastest.
struct CosineGrid {
  std::vector<double> initial_lrs = {0.05, 0.1, 0.2, 0.4, 0.6};  ///< Appendix D
  std::vector<double> momenta = {0.0};
  std::vector<double> weight_decays = {0.0};
  /// Throws Error naming the list: an empty list, or a value that is not finite.
  void validate() const;
  std::size_t size() const { return initial_lrs.size() * momenta.size() * weight_decays.size(); }
};
/// The cosine is sampled at each block's middle step, so that it lives in the problem's θ; a
/// problem without a momentum (weight decay) group refuses a grid with a momentum (weight
/// decay) other than 0. Runs the whole grid whatever the budget (it is a fixed protocol: its
/// row's runs and seconds say what it used); every combination is one trial.
CompareMethod cosine_schedule_entry(CosineGrid grid);
CompareMethod cosine_schedule_entry(std::vector<double> initial_lrs);
/// Per pass, (α₀, momentum, weight decay) uniform in [0, 1] × [0, 0.99] × [0, 4e-3] (the schedule
/// experiment's search box), the registry's "hypergradient-descent" over the horizon with
/// `online` as its outer optimizer (β), and the rate it ends with in every block scored in the
/// problem's θ.
CompareMethod hypergradient_descent_schedule_entry(OuterOptions online, std::uint64_t seed);

}  // namespace gradhpo::hpo
