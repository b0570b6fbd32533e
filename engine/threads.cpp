#include "threads.h"

#include <sched.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cgroup.h"
#include "error.h"

// OpenBLAS's own thread count, when a pthreads OpenBLAS is linked (a weak reference: absent,
// it is null and nothing is called; an OpenMP OpenBLAS follows omp_set_num_threads).
#if defined(__GNUC__)
extern "C" __attribute__((weak)) void openblas_set_num_threads(int);
#endif

namespace gradhpo {

namespace {

/// OpenMP's thread count before any call here changed it: the default that n = 0 restores.
int default_threads() {
#ifdef _OPENMP
  static const int threads = omp_get_max_threads();
#else
  static const int threads = 1;
#endif
  return threads;
}

// Read at start-up (whenever this file is linked, set_num_threads is), before anyone changes it.
[[maybe_unused]] const int start_threads = default_threads();

/// The CPU quota of the process's cgroups in CPUs, the tightest along the chain; 0 when none.
double cgroup_cpu_quota(const std::string& root) {
  const cgroup::Folders f = cgroup::folders("cpu", root);
  double quota = 0;
  for (const std::string& dir : f.dirs) {
    double q = 0, period = 0;
    if (f.v2) {
      std::istringstream line(cgroup::first_line(dir + "/cpu.max"));  // "max 100000" or "150000 100000"
      std::string first;
      if (!(line >> first) || first == "max" || !(line >> period)) continue;
      q = std::strtod(first.c_str(), nullptr);
    } else {
      q = std::strtod(cgroup::first_line(dir + "/cpu.cfs_quota_us").c_str(), nullptr);  // -1: none
      period = std::strtod(cgroup::first_line(dir + "/cpu.cfs_period_us").c_str(), nullptr);
    }
    if (q > 0 && period > 0) quota = quota > 0 ? std::min(quota, q / period) : q / period;
  }
  return quota;
}

/// The MPI ranks on this machine, from the launcher's environment (Open MPI, MPICH/Hydra).
int local_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(name)) {
      const long n = std::strtol(v, nullptr, 10);
      if (n >= 1) return static_cast<int>(n);
    }
  return 1;
}

}  // namespace

std::string Cores::describe() const {
  std::ostringstream s;
  s << affinity << " CPU" << (affinity == 1 ? "" : "s") << " in the affinity mask";
  if (quota > 0) s << ", a cgroup quota of " << quota << " CPUs";
  if (local_ranks > 1) s << ", shared by " << local_ranks << " MPI ranks on this machine";
  return s.str();
}

Cores available_cores(const std::string& root) {
  Cores c;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) c.affinity = std::max(1, CPU_COUNT(&set));
  c.quota = cgroup_cpu_quota(root);
  c.local_ranks = local_ranks();
  int cores = c.affinity;
  if (c.quota > 0) cores = std::min(cores, std::max(1, static_cast<int>(std::ceil(c.quota - 1e-9))));
  c.available = std::max(1, cores / c.local_ranks);
  return c;
}

int capped_threads(int requested, std::string* warning) {
  require(requested >= 0, "capped_threads: " + std::to_string(requested) + " threads (expected >= 1, or 0 for the default)");
  const Cores c = available_cores();
  if (requested == 0) return std::min(default_threads(), c.available);
  if (requested <= c.available) return requested;
  if (warning)
    *warning = std::to_string(requested) + " threads requested, but this process may use " + std::to_string(c.available) +
               " core" + (c.available == 1 ? "" : "s") + " (" + c.describe() + "): using " + std::to_string(c.available) +
               " threads";
  return c.available;
}

void set_num_threads(int n) {
  require(n >= 0, "set_num_threads: " + std::to_string(n) + " threads (expected >= 1, or 0 for the default)");
  const int threads = n == 0 ? default_threads() : n;
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  Eigen::setNbThreads(threads);
#if defined(__GNUC__)
  if (openblas_set_num_threads) openblas_set_num_threads(threads);
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace gradhpo
