// The baselines Micaelli & Storkey compare their learned schedules with, as comparison entries
// (compare.h) on a learning-rate-schedule problem ("lr" in blocks over the horizon, and
// optionally "momentum" and "weight_decay"; tasks/experiments.h, "schedule"):
//   cosine              the hand-tuned baseline (Appendix D): a cosine-annealed learning rate for
//                       each α₀ of a list, no momentum or weight decay, the best by validation loss
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

/// The cosine is sampled at each block's middle step, so that it lives in the problem's θ.
CompareMethod cosine_schedule_entry(std::vector<double> initial_lrs);
/// Per pass, (α₀, momentum, weight decay) uniform in [0, 1] × [0, 0.99] × [0, 4e-3] (the schedule
/// experiment's search box), the registry's "hypergradient-descent" over the horizon with
/// `online` as its outer optimizer (β), and the rate it ends with in every block scored in the
/// problem's θ.
CompareMethod hypergradient_descent_schedule_entry(OuterOptions online, std::uint64_t seed);

}  // namespace gradhpo::hpo
