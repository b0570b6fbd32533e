// What the CLI tests that start `mpirun ... gradhpo` share (test_distribute*.cpp): the launcher
// of n ranks with its environment, and results.json without what the clock decides. Only with
// MPI (GRADHPO_MPIEXEC).
#pragma once

#ifdef GRADHPO_MPIEXEC

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace gradhpo::testing {

/// One thread per rank, the GEMM plan that does not depend on a block's size, and ranks that
/// sleep while they wait (oversubscribed ranks spin in collectives otherwise).
inline const std::string kMpiEnv = "GRADHPO_GEMM=eigen OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE";

/// The environment and launcher of `n` ranks. Open MPI keeps what MPI_Init allocates until the
/// process ends; LeakSanitizer (the sanitizer build) is told so by the suppressions file
/// (tests/mpi/lsan.supp), and still reports our own leaks.
inline std::string ranks(int n) {
  return kMpiEnv + " LSAN_OPTIONS=" + GRADHPO_MPI_LSAN_OPTIONS + " " + GRADHPO_MPIEXEC +
         " --allow-run-as-root --oversubscribe -np " + std::to_string(n);
}

/// `j` without its wall-time fields ("seconds", "calibration_seconds"), at any depth.
inline nlohmann::json untimed(nlohmann::json j) {
  if (j.is_object()) {
    for (const char* key : {"seconds", "calibration_seconds"}) j.erase(key);
    for (auto& [key, value] : j.items()) value = untimed(value);
  } else if (j.is_array()) {
    for (auto& value : j) value = untimed(value);
  }
  return j;
}

/// How often `what` occurs in `text`.
inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace gradhpo::testing

#endif  // GRADHPO_MPIEXEC
