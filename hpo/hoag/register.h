// HOAG's registry entry (gradhpo::hoag): the component registers it itself, since gradhpo::hpo's
// register_builtin_methods cannot reach libLBFGS.
#pragma once

#include "../registry.h"
#include "hoag.h"

namespace gradhpo::hpo {

/// Adds "hoag" as a search: its iterates θ_k are its trials, each scored by training T steps from
/// w₀ as it arrives, while an inner-step budget is charged per pass over the training loss.
void register_hoag_method(Registry& r = Registry::global());

/// HOAG under a budget (Pedregosa 2016, Algorithm 1; hoag.h): each pass over the training loss
/// it makes (an L-BFGS evaluation, a CG Hessian-vector product) is charged as one inner step per
/// batch its h averages, and never more than the budget holds (HoagOptions::max_passes; a
/// cut-short last iteration is not recorded). Every iterate θ_k becomes a trial, scored as it
/// arrives by training from w₀ for T steps, so that its row compares with every other method's
/// (those steps are not charged to an inner-step budget, but a budget in seconds or work sees
/// them: it stops HOAG after the iteration that reaches it). An iterate whose training diverges
/// is a failed trial. `options.max_iterations` still caps it.
SearchRun hoag_within(const BilevelProblem& problem, HoagOptions options, const Budget& budget);

}  // namespace gradhpo::hpo
