// The library's thread-count call (engine/threads.h): set, read back, 0 restores the default.
#include <doctest/doctest.h>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <gradhpo/engine/error.h>
#include <gradhpo/engine/kernels/cpu.h>
#include <gradhpo/engine/threads.h>

using namespace gradhpo;

TEST_CASE("set_num_threads: set, read back, 0 is the default, negative is refused") {
  const int start = num_threads();
  REQUIRE(start >= 1);
#ifdef _OPENMP
  set_num_threads(2);
  CHECK(num_threads() == 2);
  CHECK(omp_get_max_threads() == 2);  // what the kernels' OpenMP loops use
  CHECK(Eigen::nbThreads() == 2);
  set_num_threads(1);
  CHECK(num_threads() == 1);
  CHECK(Eigen::nbThreads() == 1);
  set_num_threads(3);
  CHECK(num_threads() == 3);
#endif
  set_num_threads(0);
  CHECK(num_threads() == start);  // the default: OpenMP's count at start-up
  CHECK_THROWS_WITH_AS(set_num_threads(-1), doctest::Contains("-1 threads"), Error);
  CHECK(num_threads() == start);  // a refused call changes nothing
}

// ---- the cores a process may use (available_cores, capped_threads) -------------------------------

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

/// A fake /proc and /sys/fs/cgroup under a temporary folder, removed with the object.
struct FakeCgroup {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gradhpo-cores-" + std::to_string(::getpid()));
  FakeCgroup() { std::filesystem::remove_all(dir); }
  ~FakeCgroup() { std::filesystem::remove_all(dir); }
  FakeCgroup(const FakeCgroup&) = delete;
  FakeCgroup& operator=(const FakeCgroup&) = delete;
  void write(const std::string& file, const std::string& text) const {
    const std::filesystem::path p = dir / std::filesystem::path(file).relative_path();
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
};

/// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("available_cores: the affinity mask, the cgroup's CPU quota (v2 and v1), the MPI ranks' share") {
  const Cores here = available_cores("/nonexistent");  // no cgroup files: the affinity mask alone
  REQUIRE(here.affinity >= 1);
  CHECK(here.quota == 0);
  CHECK(here.available == here.affinity);

  FakeCgroup v2;
  v2.write("/proc/self/cgroup", "0::/job\n");
  v2.write("/sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  v2.write("/sys/fs/cgroup/job/cpu.max", "50000 100000\n");  // half a CPU
  v2.write("/sys/fs/cgroup/cpu.max", "max 100000\n");
  Cores c = available_cores(v2.dir.string());
  CHECK(c.quota == doctest::Approx(0.5));
  CHECK(c.available == 1);
  CHECK(c.describe().find("a cgroup quota of 0.5 CPUs") != std::string::npos);

  FakeCgroup v1;
  v1.dir += "-v1";
  v1.write("/proc/self/cgroup", "3:cpu,cpuacct:/slurm/job1\n4:memory:/\n0::/\n");
  v1.write("/sys/fs/cgroup/cpu,cpuacct/slurm/job1/cpu.cfs_quota_us", "150000\n");
  v1.write("/sys/fs/cgroup/cpu,cpuacct/slurm/job1/cpu.cfs_period_us", "100000\n");
  v1.write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  v1.write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  c = available_cores(v1.dir.string());
  CHECK(c.quota == doctest::Approx(1.5));
  CHECK(c.available == std::min(here.affinity, 2));  // 1.5 CPUs of quota: 2 threads share them

  // Several MPI ranks on one machine share its cores: each gets its part, at least one.
  {
    const ScopedEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
    const Cores shared = available_cores("/nonexistent");
    CHECK(shared.local_ranks == 2);
    CHECK(shared.available == std::max(1, here.affinity / 2));
    CHECK(shared.describe().find("shared by 2 MPI ranks") != std::string::npos);
  }
  {
    const ScopedEnv ranks("MPI_LOCALNRANKS", "1000");
    CHECK(available_cores("/nonexistent").available == 1);
  }
}

TEST_CASE("capped_threads: a request above the cores is capped with a warning, the default silently") {
  const int cores = available_cores().available;
  std::string warning;
  CHECK(capped_threads(1, &warning) == 1);
  CHECK(warning.empty());
  CHECK(capped_threads(cores, &warning) == cores);
  CHECK(warning.empty());
  CHECK(capped_threads(cores + 254, &warning) == cores);
  CHECK(warning.find(std::to_string(cores + 254) + " threads requested, but this process may use " +
                     std::to_string(cores)) != std::string::npos);
  warning.clear();
  const int by_default = capped_threads(0, &warning);
  CHECK(by_default >= 1);
  CHECK(by_default <= cores);
  CHECK(warning.empty());
  CHECK_THROWS_WITH_AS(capped_threads(-1), doctest::Contains("-1 threads"), Error);
}

TEST_CASE("parallel_grain: measured once and never below the fixed bound, and parallel_chunks covers every element once") {
  const std::int64_t grain = kernels::parallel_grain();
  MESSAGE("parallel_grain: " << grain << " elements (fixed bound " << kernels::kParallelGrain << ")");
  CHECK(grain >= kernels::kParallelGrain);
  CHECK(kernels::parallel_grain() == grain);  // one measurement per process
  for (const std::int64_t n : {grain - 1, grain, 3 * grain + 7}) {
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    kernels::parallel_chunks(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++seen[static_cast<std::size_t>(i)];
    });
    CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
  }
}
