// `mpirun -np 2 gradhpo hypervariance --distribute trials`, as a user runs it: every perturbation
// a task over the ranks, only rank 0 prints and writes, and results.json is the single process's
// bit for bit (every statistic and sample; the seconds aside). Built only with MPI
// (GRADHPO_MPIEXEC); the launch is test_distribute.cpp's.
#include "cli.h"

#include "../data/temp_dir.h"
#include "run_files.h"

#ifdef GRADHPO_MPIEXEC

using gradhpo::testing::read_json;
using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;

namespace {

// An MLP on 128 Fashion-MNIST images, 4 inner steps, 2 perturbations per factor.
const std::string kTiny = "hypervariance --train-limit 128 --batch-size 32 --steps 4 --blocks 2 --perturbations 2 "
                          "--val-subset 64 --threads 1 ";
const std::string kEnv = "GRADHPO_GEMM=eigen OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE";
const std::string kTwoRanks =
    kEnv + " ASAN_OPTIONS=detect_leaks=0 " + GRADHPO_MPIEXEC + " --allow-run-as-root --oversubscribe -np 2";

/// results.json without its timing.
nlohmann::json untimed(nlohmann::json rows) {
  for (nlohmann::json& r : rows) r.erase("seconds");
  return rows;
}

}  // namespace

TEST_CASE("mpirun -np 2 gradhpo hypervariance: the perturbations over the ranks (trials, by itself), the one-process bits") {
  TempDir dir;
  const Run one = run(kTiny + "--out " + dir.path + "/one", kEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--out " + dir.path + "/two", kTwoRanks);
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(two.output.find("plots:") == two.output.rfind("plots:"));  // rank 1 prints nothing
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == 8);  // 2 settings x 4 factors
  CHECK(untimed(b) == untimed(a));
  const Run explicit_trials = run(kTiny + "--distribute trials --out " + dir.path + "/three", kTwoRanks);
  REQUIRE(explicit_trials.status == 0);
  CHECK(untimed(read_json(dir.path + "/three/results.json")) == untimed(a));
}

TEST_CASE("hypervariance --distribute trials outside mpirun is refused") {
  const Run alone = run(kTiny + "--distribute trials");
  CHECK(alone.status != 0);
  CHECK(alone.output.find("--distribute trials runs under mpirun") != std::string::npos);
}

#endif  // GRADHPO_MPIEXEC
