// Where the rows of a seeded comparison run when they run apart (compare.h, the pooled
// compare_seeds): a pool of workers that runs numbered tasks and reports each outcome to one
// coordinating process. The MPI ranks of a communicator are one (hpo/mpi/compare.h, RankPool);
// this interface keeps gradhpo::tasks free of MPI and gradhpo::mpi free of the harness.
//
// Every process of the pool calls every member in the same order (they are collective). A task's
// result must depend only on its index, so that which worker ran it, and when, changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gradhpo::hpo {

class RowPool {
 public:
  struct Outcome {
    std::int64_t index = -1;
    bool ok = false;
    std::string bytes;  ///< what the task returned (ok)
    std::string error;  ///< what it threw (not ok)
    int worker = -1;    ///< who ran it (an MPI rank)
  };

  virtual ~RowPool() = default;
  /// Whether this process coordinates: it builds every seed's plan, calls the hooks (the run
  /// store's commits, progress) and prints; the others only run tasks.
  virtual bool coordinator() const = 0;
  /// Runs tasks 0 .. count-1 over the workers. On the coordinator: `on_done` sees each outcome as
  /// it arrives and every outcome is returned by index; elsewhere an empty vector. A task that
  /// throws is an outcome that is not ok, never an error of the pool.
  virtual std::vector<Outcome> run(std::int64_t count, const std::function<std::string(std::int64_t index)>& task,
                                   const std::function<void(const Outcome&)>& on_done) = 0;
  /// The coordinator's `bytes` on every process.
  virtual void share(std::string& bytes) = 0;
};

}  // namespace gradhpo::hpo
