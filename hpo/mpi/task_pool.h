// Independent tasks spread over the ranks of a communicator with dynamic scheduling: the
// workload of trials (random and grid search, Bayesian optimization's batch of q proposals,
// the compare harness's methods × seeds, hypervariance's perturbations, reproductions).
//
// Rank 0 coordinates: every other rank asks for work, gets the next task index, runs it and
// sends the result back with its next request, so a slow task never holds up the others (trials
// differ in length: a diverged run stops early, a larger network trains longer). With one rank,
// rank 0 runs every task itself, in index order. What a task computes must depend only on its
// index (a trial's draws derive from (seed, trial index)), so the results — collected by index —
// are the same for every rank count; only which rank ran what, and when, differ.
//
// A task that throws (a diverged run, a configuration the method refuses) is a failed outcome,
// recorded with its message and the rank — never fatal to the job. An exception that is not a
// std::exception ends the job through Communicator::abort, naming the rank.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "communicator.h"

namespace gradhpo::mpi {

struct TaskOutcome {
  std::int64_t index = -1;
  bool ok = false;
  std::string bytes;  ///< what the task returned (ok)
  std::string error;  ///< what it threw (not ok)
  int rank = -1;      ///< the rank that ran it
};

/// Runs tasks 0 .. count-1 (collective: every rank calls it with the same count). Returns on
/// rank 0 every outcome by index; on the other ranks an empty vector. `on_done` (rank 0 only,
/// optional) sees each outcome as it arrives — completion order, not index order — so a run
/// store can commit it at once.
std::vector<TaskOutcome> run_tasks(const Communicator& comm, std::int64_t count,
                                   const std::function<std::string(std::int64_t index)>& task,
                                   const std::function<void(const TaskOutcome&)>& on_done = {});

}  // namespace gradhpo::mpi
