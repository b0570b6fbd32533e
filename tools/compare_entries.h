// Comparison entries beyond hpo/compare.h's, for the method table of compare and reproduce:
//   forward-greedy  the greedy setting of forward mode (gradhpo hpo --method greedy): the same
//                   hypergradient code on segments of T / lr_blocks steps, θ updated after each
//                   and training carried on (Micaelli & Storkey, Figure 3's greedy runs)
//   cosine          the hand-tuned baseline (Micaelli & Storkey, Appendix D): a cosine-annealed
//                   learning rate for each α₀ of a list, no momentum or weight decay, the best
//                   by validation loss
//   hd on a schedule  Baydin et al.'s hypergradient descent as Micaelli & Storkey ran it against
//                   their schedules (Section 5.2): from initial values drawn from the search range
//                   it learns one global learning rate online, momentum and weight decay held
// Each is charged like the library's entries: one training run of T inner steps per pass
// over the horizon, trial or outer iteration, and reports the best point it trained at.
#pragma once

#include <vector>

#include <gradhpo/hpo/tasks/compare.h>

namespace gradhpo::tools {

/// Passes over the horizon while the budget lasts; each pass's end θ is trained from w₀ to
/// score it (as the online entries do), and the row is the best pass.
hpo::CompareMethod forward_greedy_method(hpo::OuterOptions outer, hpo::ForwardOptions forward, std::int64_t lr_blocks);
/// Needs a problem whose hyperparameters are a learning-rate schedule ("lr", blocks over the
/// horizon), and optionally "momentum" and "weight_decay" (held at 0): the schedule experiment.
/// The cosine is sampled at each block's middle step, so that it lives in the problem's θ.
hpo::CompareMethod cosine_schedule_method(std::vector<double> initial_lrs);
/// For a problem of a learning-rate schedule ("lr" in blocks, "momentum", "weight_decay"): per
/// pass, (α₀, momentum, weight decay) uniform in [0, 1] × [0, 0.99] × [0, 4e-3] (the schedule
/// experiment's search box), hypergradient descent over the horizon with `online` as its outer
/// optimizer (β), and the rate it ends with in every block scored in the problem's θ.
hpo::CompareMethod hypergradient_descent_schedule_method(hpo::OuterOptions online, std::uint64_t seed);

}  // namespace gradhpo::tools
