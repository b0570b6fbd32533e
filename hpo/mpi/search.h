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
// The searches whose proposals do not depend on their results: random and grid search, under a
// budget in inner steps or in trials (a seconds or work budget gives no count to propose; a
// resumed run replays the count it recorded as a trials budget). Bayesian optimization
// proposes from its results and is refused here.
#pragma once

#include <map>
#include <string>

#include "../search/trials.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// The registry's search `name` ("random", "grid") over `comm`'s ranks; every rank calls it
/// with the same arguments and gets the same SearchRun. Throws Error, before any training, for
/// another search or a budget in seconds or work.
hpo::SearchRun run_search(const Communicator& comm, const std::string& name, const hpo::BilevelProblem& problem,
                          const hpo::SearchOptions& common, const std::map<std::string, std::string>& options = {});

}  // namespace gradhpo::mpi
