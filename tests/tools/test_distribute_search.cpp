// The trials workload as a user runs it: `mpirun -np 2 gradhpo hpo --method random --distribute
// trials` (every trial's θ and scores in results.json the single process's, bit for bit; a
// Bayesian search killed under 2 ranks and resumed in one process gives them too), and
// `mpirun -np 2 gradhpo hypervariance --distribute trials` (every perturbation a task; every
// statistic and sample the single process's, the seconds aside). Only rank 0 prints and writes.
// Built only with MPI (GRADHPO_MPIEXEC); the launch is test_distribute.cpp's.
#include "cli.h"

#include "../data/temp_dir.h"
#include "mpirun.h"
#include "run_files.h"

#ifdef GRADHPO_MPIEXEC

using gradhpo::testing::kMpiEnv;
using gradhpo::testing::ranks;
using gradhpo::testing::read_json;
using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
using gradhpo::testing::untimed;

namespace {

// LeNet-5 on 256 Fashion-MNIST images, 6 trials of 4 inner steps.
const std::string kSearch = "hpo --model lenet5 --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 "
                            "--no-plots --trials 6 ";
// Hypervariance on 128 images: 4 inner steps, 2 perturbations per factor.
const std::string kTiny = "hypervariance --train-limit 128 --batch-size 32 --steps 4 --blocks 2 --perturbations 2 "
                          "--val-subset 64 --threads 1 ";

}  // namespace

TEST_CASE("mpirun -np 2 gradhpo hpo --method random --distribute trials: the one-process results.json bit for bit") {
  TempDir dir;
  const Run one = run(kSearch + "--method random --out " + dir.path + "/one", kMpiEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kSearch + "--method random --distribute trials --out " + dir.path + "/two", ranks(2));
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(two.output.find("stopped:") == two.output.rfind("stopped:"));  // rank 1 prints nothing
  const nlohmann::json a = read_json(dir.path + "/one/results.json");
  REQUIRE(a["trials"].size() == 6);
  CHECK(read_json(dir.path + "/two/results.json") == a);
}

TEST_CASE("mpirun -np 2 gradhpo hpo --method bayesian (q = 2) killed mid-run, resumed in one process: the same trials") {
  TempDir dir;
  const std::string bo = kSearch + "--method bayesian --method-options q=2,initial-points=2 ";
  const Run one = run(bo + "--out " + dir.path + "/one", kMpiEnv);
  REQUIRE(one.status == 0);
  // The 4th commit (the config's, then trials 0, 1 and 2) kills rank 0, and with it the job.
  const Run killed = run(bo + "--out " + dir.path + "/two", "GRADHPO_FAULT_AT_COMMIT=4 " + ranks(2));
  REQUIRE(killed.status != 0);
  const Run resumed = run("hpo --resume " + dir.path + "/two", kMpiEnv);
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(resumed.output.find("2 trials recorded") != std::string::npos);
  CHECK(read_json(dir.path + "/two/results.json") == read_json(dir.path + "/one/results.json"));
}

TEST_CASE("mpirun -np 2 gradhpo hypervariance --distribute trials: the perturbations over the ranks, the one-process bits") {
  TempDir dir;
  const Run one = run(kTiny + "--out " + dir.path + "/one", kMpiEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--distribute trials --out " + dir.path + "/two", ranks(2));
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(two.output.find("plots:") == two.output.rfind("plots:"));  // rank 1 prints nothing
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == 8);  // 2 settings x 4 factors
  CHECK(untimed(b) == untimed(a));
}

TEST_CASE("--distribute trials outside mpirun, and for a method that is not a search, is refused") {
  const Run alone = run(kTiny + "--distribute trials");
  CHECK(alone.status != 0);
  CHECK(alone.output.find("--distribute trials runs under mpirun") != std::string::npos);
  const Run hpo_alone = run(kSearch + "--method random --distribute trials");
  CHECK(hpo_alone.status != 0);
  CHECK(hpo_alone.output.find("--distribute trials runs under mpirun") != std::string::npos);
  const Run forward = run(kSearch + "--method forward --distribute trials", ranks(2));
  CHECK(forward.status != 0);
  CHECK(forward.output.find("--distribute trials spreads a search's trials over the ranks") != std::string::npos);
}

#endif  // GRADHPO_MPIEXEC
