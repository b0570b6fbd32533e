// A black-box search with its trials spread over MPI ranks (DESIGN.md, "Beyond one machine":
// the trials workload). In three passes, on every rank:
//   1. a dry run of the search proposes its trials (TrialJournal::proposals) without training
//      them — the same θ, in the same order, as the single-process search draws them (each
//      trial's draws derive from the seed and the trial's index);
//   2. the proposals are trained over the ranks with dynamic scheduling (task_pool.h: rank 0
//      hands out indices, a diverged trial is a failed trial, never fatal to the job);
//   3. the search runs again replaying those trials (TrialJournal::recorded): the SearchRun —
//      trials, best, failures, stop reason — is the single-process one, timing aside, for any
//      rank count, and the same on every rank.
// Random and grid search take these passes once under a budget in inner steps or trials. Under a
// budget in seconds rank 0 decides when the time is up: trials are proposed and trained in
// chunks of 2 × ranks while rank 0's steady clock, started at the call, is under the limit (a
// chunk overshoots it by at most its own trials, as one process overshoots by at most one
// trial); the count reached is replayed as a budget of exactly that many trials (Budget::trials,
// what a resume from the run store does), the stop reason says so, and SearchRun::seconds is rank
// 0's time. The same seed and count give the single-process trials bit for bit; the count itself
// depends on the machine and the rank count, as any time budget's does.
//
// Bayesian optimization proposes from its results: each round's batch of q points (constant
// liar, hpo/search/bayesian/bayesian.h; q fixed, whatever the rank count) is trained over the
// ranks through TrialJournal::train_batch and the results come back in index order, so the
// SearchRun is the single-process one with the same q for any rank count. Under a budget in
// seconds its rounds read rank 0's steady clock (broadcast) at a round's start.
//
// A budget in engine work is refused: each rank counts its own work.
#pragma once

#include <map>
#include <string>

#include "../search/trials.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// The registry's search `name` ("random", "grid", "bayesian") over `comm`'s ranks; every rank
/// calls it with the same arguments and gets the same SearchRun. `journal` (optional, a run
/// store's): its `recorded` trials are replayed, not trained (a resumed run, with any rank count),
/// and its `on_trial` — set it on rank 0 only, where the store is — sees every new trial in index
/// order once trained (Bayesian optimization: after each round; random and grid search: after
/// the whole count, or after each chunk under a budget in seconds). Throws Error, before any
/// training, for another search or a budget in work; on every rank, the error a trial threw that
/// was not a diverged run (a diverged run is a failed trial).
hpo::SearchRun run_search(const Communicator& comm, const std::string& name, const hpo::BilevelProblem& problem,
                          const hpo::SearchOptions& common, const std::map<std::string, std::string>& options = {},
                          hpo::TrialJournal* journal = nullptr);

}  // namespace gradhpo::mpi
