// `mpirun -np 2 gradhpo compare --distribute trials`, as a user runs it: every seed's methods
// spread over the ranks, only rank 0 printing and writing the run folder, and results.json the
// one-process run's but for its timing fields; a run whose rank 0 dies mid-way is resumed with
// another rank count to the same results.json; `reproduce` under mpirun spreads its trials
// unasked. Built only with MPI (GRADHPO_MPIEXEC).
#include "cli.h"

#include <filesystem>

#include "../data/temp_dir.h"
#include "mpirun.h"
#include "run_files.h"

#ifdef GRADHPO_MPIEXEC

using gradhpo::testing::count;
using gradhpo::testing::kMpiEnv;
using gradhpo::testing::ranks;
using gradhpo::testing::read_json;
using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
using gradhpo::testing::untimed;

namespace {

// An MLP on 200 Fashion-MNIST images, 2 seeds × 3 methods (one diverging trial or more among
// random search's), 2 runs of T = 6 steps each: a budget in runs, so the rows do not depend on
// the clock.
const std::string kTiny =
    "compare --experiment schedule --dataset fashion-mnist --model mlp --hidden 8 --train-size 200 --val-size 100 "
    "--steps 6 --batch-size 50 --lr-blocks 2 --budget-runs 2 --equalise none --seeds 2 "
    "--methods forward,random,online-t1t2 --threads 1 --no-plots ";

}  // namespace

TEST_CASE("mpirun -np 2 gradhpo compare --distribute trials: the one-process results.json, timing aside, and it resumes with -np 1") {
  TempDir dir;
  const Run one = run(kTiny + "--out " + dir.path + "/one", kMpiEnv);
  INFO(one.output);
  REQUIRE(one.status == 0);
  const nlohmann::json expected = untimed(read_json(dir.path + "/one/results.json"));
  REQUIRE(expected["runs"].size() == 2);

  const Run two = run(kTiny + "--distribute trials --out " + dir.path + "/two", ranks(2));
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(count(two.output, "gradhpo compare: schedule, seed 0") == 1);  // rank 1 prints nothing
  CHECK(count(two.output, "over seeds:") == 1);
  CHECK(untimed(read_json(dir.path + "/two/results.json")) == expected);

  // Rank 0 dies inside its 3rd commit (the folder's record, the first row, then config.json
  // derived from it): the job ends, the folder keeps the row, and one rank finishes the run.
  const std::string cut = dir.path + "/cut";
  const Run killed = run(kTiny + "--distribute trials --out " + cut, "GRADHPO_FAULT_AT_COMMIT=3 " + ranks(2));
  CHECK(killed.status != 0);
  REQUIRE(std::filesystem::exists(cut + "/run.state"));
  const Run resumed = run("compare --distribute trials --resume " + cut, ranks(1));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(resumed.output.find("resuming " + cut + ": 1 of 3 methods of seed 0 recorded") != std::string::npos);
  CHECK(untimed(read_json(cut + "/results.json")) == expected);
}

TEST_CASE("mpirun -np 2 gradhpo reproduce spreads the trials without being told, and reproduce.json is the one-process one") {
  TempDir dir;
  const std::string tiny = "GRADHPO_SET='steps=6 budget-runs=1 train-size=200 val-size=100 threads=1 seeds=2 equalise=none' ";
  const std::string args = "reproduce quickstart --no-plots --out " + dir.path;
  const Run one = run(args + "/one", tiny + kMpiEnv);
  INFO(one.output);
  REQUIRE(one.status == 0);
  const Run two = run(args + "/two", tiny + ranks(2));  // no --distribute: trials, the only workload
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(count(two.output, "run folder:") == 1);  // rank 0 alone prints
  CHECK(untimed(read_json(dir.path + "/two/results.json")) == untimed(read_json(dir.path + "/one/results.json")));
  CHECK(untimed(read_json(dir.path + "/two/reproduce.json")) == untimed(read_json(dir.path + "/one/reproduce.json")));
}

TEST_CASE("--distribute trials outside mpirun is refused, naming how to start it") {
  const Run alone = run(kTiny + "--distribute trials");
  CHECK(alone.status != 0);
  CHECK(alone.output.find("--distribute trials runs under mpirun: mpirun -np N gradhpo compare --distribute trials") !=
        std::string::npos);
  const Run reproduce = run("reproduce quickstart --distribute trials --no-plots");
  CHECK(reproduce.status != 0);
  CHECK(reproduce.output.find("--distribute trials runs under mpirun") != std::string::npos);
}

#endif  // GRADHPO_MPIEXEC
