// The compare harness's methods × seeds spread over MPI ranks (DESIGN.md, "Beyond one machine":
// the trials workload): rank 0 coordinates and runs the hooks (the run store's commits), every
// other rank runs rows as the task pool hands them out (task_pool.h: dynamic scheduling), and
// every rank returns the single-process SeededComparison — timing fields aside, for budgets in
// inner steps or trials (or equal work); see hpo::compare_seeds's pooled form in
// hpo/tasks/compare.h for what runs where, and what a budget in seconds changes.
//
//   const mpi::Communicator comm = mpi::Communicator::world();
//   hpo::SeededComparison s = mpi::compare_seeds(comm, {0, 1, 2}, [](std::uint64_t seed) {
//     hpo::ComparisonPlan p;  ...  // the problem, methods and options at this seed
//     return p;
//   });
//
// RankPool itself needs only gradhpo::mpi; compare_seeds is gradhpo::tasks' (link both).
#pragma once

#include "../tasks/compare.h"
#include "../tasks/row_pool.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// The ranks of a communicator as a row pool: rank 0 coordinates (with one rank it runs every
/// task itself, in order), run is run_tasks (task_pool.h), share a broadcast from rank 0.
class RankPool final : public hpo::RowPool {
 public:
  explicit RankPool(Communicator comm) : comm_(std::move(comm)) {}
  bool coordinator() const override { return comm_.is_root(); }
  std::vector<Outcome> run(std::int64_t count, const std::function<std::string(std::int64_t index)>& task,
                           const std::function<void(const Outcome&)>& on_done) override;
  void share(std::string& bytes) override;

 private:
  Communicator comm_;
};

/// hpo::compare_seeds over `comm`'s ranks (collective: every rank calls it with the same seeds).
inline hpo::SeededComparison compare_seeds(const Communicator& comm, const std::vector<std::uint64_t>& seeds,
                                           const std::function<hpo::ComparisonPlan(std::uint64_t seed)>& plan) {
  RankPool pool(comm);
  return hpo::compare_seeds(seeds, plan, pool);
}

}  // namespace gradhpo::mpi
