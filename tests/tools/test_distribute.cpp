// `mpirun -np 2 gradhpo hpo --distribute columns|data`, as a user runs it: only rank 0 prints
// and writes the run folder, and the run is the single process's — forward mode's columns spread
// over the ranks bit for bit under GRADHPO_GEMM=eigen (every outer step's θ, hypergradient and
// L_val in results.json), every batch sharded over the ranks to float32 rounding (the same
// steps of the sign optimizer). Built only with MPI (GRADHPO_MPIEXEC).
#include "cli.h"

#include <cmath>

#include "../data/temp_dir.h"
#include "run_files.h"

#ifdef GRADHPO_MPIEXEC

using gradhpo::testing::read_json;
using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;

namespace {

// LeNet-5 on 256 Fashion-MNIST images: 4 inner steps per run, 2 outer steps.
const std::string kTinyRun = "hpo --model lenet5 --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 "
                             "--no-plots ";
const std::string kTiny = kTinyRun + "--outer-steps 2 ";
const std::string kEnv = "GRADHPO_GEMM=eigen OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE";
// Open MPI keeps what MPI_Init allocates until the process ends, which LeakSanitizer reports
// (the sanitizer build): leak checks are off for the ranks, as for tests/mpi.
const std::string kTwoRanks =
    kEnv + " ASAN_OPTIONS=detect_leaks=0 " + GRADHPO_MPIEXEC + " --allow-run-as-root --oversubscribe -np 2";

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

}  // namespace

TEST_CASE("mpirun -np 2 gradhpo hpo --distribute columns: forward mode's columns over the ranks, the one-process run's bits") {
  TempDir dir;
  const Run one = run(kTiny + "--out " + dir.path + "/one", kEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--distribute columns --out " + dir.path + "/two", kTwoRanks);
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(count(two.output, "stopped:") == 1);  // rank 1 prints nothing
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i]["theta"] == a[i]["theta"]);
    CHECK(b[i]["hypergradient"] == a[i]["hypergradient"]);
    CHECK(b[i]["val_loss"] == a[i]["val_loss"]);
    CHECK(b[i]["val_accuracy"] == a[i]["val_accuracy"]);
  }
  CHECK(read_json(dir.path + "/two/summary.json")["test_accuracy"] == read_json(dir.path + "/one/summary.json")["test_accuracy"]);
}

TEST_CASE("mpirun -np 2 gradhpo hpo --distribute data: every batch sharded, the one-process run to rounding") {
  TempDir dir;
  const Run one = run(kTiny + "--method reverse --out " + dir.path + "/one", kEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--method reverse --distribute data --out " + dir.path + "/two", kTwoRanks);
  INFO(two.output);
  REQUIRE(two.status == 0);
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i]["theta"] == a[i]["theta"]);  // the sign optimizer's steps: the same signs
    CHECK(rel(b[i]["val_loss"].get<double>(), a[i]["val_loss"].get<double>()) < 1e-4);
  }
}

// The stored run says "forward" whichever way its columns ran: a run of one outer step with its
// columns over two ranks, resumed for a second step in one process, is the uninterrupted
// one-process run bit for bit, and so is the other way round.
TEST_CASE("a run made with --distribute columns resumes without it, and the other way round") {
  TempDir dir;
  const Run whole = run(kTiny + "--out " + dir.path + "/whole", kEnv);
  REQUIRE(whole.status == 0);
  const nlohmann::json a = read_json(dir.path + "/whole/results.json");
  for (const bool spread_first : {true, false}) {
    const std::string folder = dir.path + (spread_first ? "/spread-first" : "/one-first");
    const std::string first = spread_first ? "--distribute columns " : "";
    const std::string second = spread_first ? "" : "--distribute columns ";
    const Run half = run(kTinyRun + "--outer-steps 1 " + first + "--out " + folder, spread_first ? kTwoRanks : kEnv);
    INFO(half.output);
    REQUIRE(half.status == 0);
    const Run rest = run(kTinyRun + "--outer-steps 2 " + second + "--resume " + folder, spread_first ? kEnv : kTwoRanks);
    INFO(rest.output);
    REQUIRE(rest.status == 0);
    CHECK(rest.output.find("resuming " + folder + " after outer step") != std::string::npos);
    const nlohmann::json b = read_json(folder + "/results.json");
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(b[i]["theta"] == a[i]["theta"]);
      CHECK(b[i]["hypergradient"] == a[i]["hypergradient"]);
      CHECK(b[i]["val_loss"] == a[i]["val_loss"]);
    }
  }
}

// --sync-batch-norm reaches the problem (BilevelProblem::sum_batch_statistics) and is refused
// without --distribute data. LeNet-5 has no batch norm, so the run is --distribute data's; that
// synchronized statistics make a model with batch norm train as in one process is checked in
// tests/mpi/test_data_parallel.cpp (a tiny WRN): WRN-16 here would spend minutes scoring the
// 10000 test images on two cores.
TEST_CASE("mpirun -np 2 gradhpo hpo --distribute data --sync-batch-norm, and the flag without --distribute data") {
  TempDir dir;
  const Run one = run(kTiny + "--method reverse --out " + dir.path + "/one", kEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--method reverse --distribute data --sync-batch-norm --out " + dir.path + "/two", kTwoRanks);
  INFO(two.output);
  REQUIRE(two.status == 0);
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i]["theta"] == a[i]["theta"]);
    CHECK(rel(b[i]["val_loss"].get<double>(), a[i]["val_loss"].get<double>()) < 1e-4);
  }
  const Run columns = run(kTiny + "--distribute columns --sync-batch-norm", kTwoRanks);
  CHECK(columns.status != 0);
  CHECK(columns.output.find("--sync-batch-norm synchronizes the batch statistics of data-parallel training: it needs "
                            "--distribute data (got --distribute columns)") != std::string::npos);
}

TEST_CASE("--distribute outside mpirun, and columns for a method without them, are refused") {
  TempDir dir;
  const Run alone = run(kTiny + "--distribute columns");
  CHECK(alone.status != 0);
  CHECK(alone.output.find("--distribute columns runs under mpirun") != std::string::npos);
  const Run reverse = run(kTiny + "--method reverse --distribute columns", kTwoRanks);
  CHECK(reverse.status != 0);
  CHECK(reverse.output.find("--distribute columns spreads forward mode's columns over the ranks; method 'reverse'") !=
        std::string::npos);
}

#endif  // GRADHPO_MPIEXEC
