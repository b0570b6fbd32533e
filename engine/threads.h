// The CPU threads the engine's kernels use (OpenMP loops, Eigen's products, and OpenBLAS when
// it is linked), set in one call — what an embedder needs when gradhpo runs inside a training
// job that has its own thread budget.
#pragma once

#include <string>

namespace gradhpo {

/// The cores this process may use, and where the number comes from.
struct Cores {
  int affinity = 1;       ///< CPUs in its affinity mask (sched_getaffinity)
  double quota = 0;       ///< its cgroup's CPU quota in CPUs (cpu.max, or cfs_quota_us / cfs_period_us); 0: none
  int local_ranks = 1;    ///< MPI ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS), which share them
  int available = 1;      ///< min(affinity, ceil(quota)) / local_ranks, at least 1
  std::string describe() const;  ///< "2 CPUs in the affinity mask, a cgroup quota of 1.5 CPUs, shared by 2 MPI ranks"
};

/// The cores of this process (`root` is prefixed to /proc and /sys: tests use a fake tree).
Cores available_cores(const std::string& root = "");

/// The threads to use for a request of `requested` (0: the default): requested capped to
/// available_cores().available, since threads beyond the cores only wait for each other (256
/// threads on 2 cores ran 15× slower than 2). `warning` (may be null) gets one sentence when a
/// request above the cores was capped; the default is capped silently.
int capped_threads(int requested, std::string* warning = nullptr);

/// Sets the threads of the engine's CPU kernels to n >= 1, or back to the default with n = 0:
/// what OpenMP chose when the process started (OMP_NUM_THREADS, or one per core; not capped
/// here: capped_threads(0) is the default within the process's cores). Throws Error
/// for n < 0. The engine's own kernels give the same bits on any number of threads
/// (kernels/cpu.h); a matrix product may not, where the GEMM planner chose another library for
/// its shape at this thread count (kernels/gemm.h). Like the rest of the engine, call it from
/// the thread that drives the tape, not while a kernel runs.
void set_num_threads(int n);
/// The threads the kernels use now (1 in a build without OpenMP).
int num_threads();

}  // namespace gradhpo
