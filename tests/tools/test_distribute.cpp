// `mpirun -np 2 gradhpo hpo --distribute columns|data`, as a user runs it: only rank 0 prints
// and writes the run folder, and the run is the single process's — forward mode's columns spread
// over the ranks bit for bit under GRADHPO_GEMM=eigen (every outer step's θ, hypergradient and
// L_val in results.json), every batch sharded over the ranks to float32 rounding (the program's
// models are float32: the same steps of the sign optimizer, L_val to 1e-4 relative).
// A rank that dies (SIGKILL) or throws mid-run ends the job with a message naming it, and the
// folder resumes — with the same rank count to the uninterrupted run's bits, with another to the
// tolerance of its workload (tools/rank_fault.h injects the faults). Built only with MPI
// (GRADHPO_MPIEXEC).
#include "cli.h"

#include <cmath>
#include <filesystem>
#include <functional>

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
namespace fs = std::filesystem;

namespace {

// LeNet-5 on 256 Fashion-MNIST images: 4 inner steps per run, 2 outer steps.
const std::string kTinyRun = "hpo --model lenet5 --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 "
                             "--no-plots ";
const std::string kTiny = kTinyRun + "--outer-steps 2 ";
// The faults' runs, smaller still: an MLP, L_val on 200 validation images, 3 outer steps.
const std::string kSmall = "hpo --model mlp --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 "
                           "--outer-steps 3 --val-subset 200 --no-plots ";
bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

/// How the run folder `got` must agree with `want`.
using FolderCheck = std::function<void(const std::string& got, const std::string& want)>;

/// Every row of `got`'s results.json against the same row of `want`'s.
void each_row(const std::string& got, const std::string& want,
              const std::function<void(const nlohmann::json&, const nlohmann::json&)>& check) {
  const nlohmann::json a = read_json(got + "/results.json"), b = read_json(want + "/results.json");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    check(a[i], b[i]);
  }
}

/// Forward-mode columns on any rank count: every outer step's θ, hypergradient and L_val, and
/// the final test accuracy, bit for bit (JSON numbers print the shortest text that reads back to
/// the same double, so equal numbers are equal bits).
void same_bits(const std::string& got, const std::string& want) {
  each_row(got, want, [](const nlohmann::json& a, const nlohmann::json& b) {
    CHECK(a["theta"] == b["theta"]);
    CHECK(a["hypergradient"] == b["hypergradient"]);
    CHECK(a["val_loss"] == b["val_loss"]);
    CHECK(a["val_accuracy"] == b["val_accuracy"]);
  });
  CHECK(read_json(got + "/summary.json")["test_accuracy"] == read_json(want + "/summary.json")["test_accuracy"]);
}

/// Data-parallel against another rank count, in float32: the same sign-optimizer steps (θ), L_val
/// to 1e-4 relative.
void same_to_float32_rounding(const std::string& got, const std::string& want) {
  each_row(got, want, [](const nlohmann::json& a, const nlohmann::json& b) {
    CHECK(a["theta"] == b["theta"]);
    CHECK(rel(a["val_loss"].get<double>(), b["val_loss"].get<double>()) < 1e-4);
  });
}

/// The same rank count: the same files, timing aside.
void same_files(const std::string& got, const std::string& want) {
  for (const char* f : {"results.json", "summary.json"}) {
    CAPTURE(f);
    CHECK(untimed(read_json(got + "/" + f)) == untimed(read_json(want + "/" + f)));
  }
}

/// `args` in one process and under `mpirun -np 2` with --distribute `how`; rank 0 alone prints,
/// and `same` compares the two folders.
void check_two_ranks_against_one(const std::string& args, const std::string& how, const FolderCheck& same) {
  TempDir dir;
  const Run one = run(args + " --out " + dir.path + "/one", kMpiEnv);
  INFO(one.output);
  REQUIRE(one.status == 0);
  const Run two = run(args + " --distribute " + how + " --out " + dir.path + "/two", ranks(2));
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(count(two.output, "stopped:") == 1);  // rank 1 prints nothing
  same(dir.path + "/two", dir.path + "/one");
}

/// A run of `args` stopped by a fault (`fault`: GRADHPO_FAULT_*_RANK=...) under `launch`: it
/// fails, its output says `says`, and its folder holds the outer steps before the fault's.
void check_cut(const std::string& args, const std::string& launch, const std::string& fault, const std::string& says,
               std::size_t rows_kept) {
  const Run cut = run(args, fault + " " + launch);
  INFO(cut.output);
  CHECK(cut.status != 0);
  CHECK(contains(cut.output, says));
  CHECK(count(cut.output, "stopped:") == 0);
  const std::string folder = args.substr(args.rfind(' ') + 1);  // args ends with --out FOLDER
  REQUIRE(fs::exists(folder + "/run.state"));
  CHECK(read_json(folder + "/results.json").size() == rows_kept);
  CHECK(read_json(folder + "/summary.json")["finished"] == false);
}

/// `gradhpo hpo --resume folder` with `more` under `launch`: it finishes.
void resume(const std::string& folder, const std::string& more, const std::string& launch) {
  const Run r = run("hpo --resume " + folder + " " + more, launch);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(contains(r.output, "resuming " + folder + " after outer step 0"));
}

}  // namespace

TEST_CASE("mpirun -np 2 gradhpo hpo --distribute columns: forward mode's columns over the ranks, the one-process run's bits") {
  check_two_ranks_against_one(kTiny, "columns", same_bits);
}

TEST_CASE("mpirun -np 2 gradhpo hpo --distribute data: every batch sharded, the one-process run to rounding") {
  check_two_ranks_against_one(kTiny + "--method reverse", "data", same_to_float32_rounding);
}

// The stored run says "forward" whichever way its columns ran: a run of one outer step with its
// columns over two ranks, resumed for a second step in one process, is the uninterrupted
// one-process run bit for bit, and so is the other way round.
TEST_CASE("a run made with --distribute columns resumes without it, and the other way round") {
  TempDir dir;
  const Run whole = run(kTiny + "--out " + dir.path + "/whole", kMpiEnv);
  REQUIRE(whole.status == 0);
  const nlohmann::json a = read_json(dir.path + "/whole/results.json");
  for (const bool spread_first : {true, false}) {
    const std::string folder = dir.path + (spread_first ? "/spread-first" : "/one-first");
    const std::string first = spread_first ? "--distribute columns " : "";
    const std::string second = spread_first ? "" : "--distribute columns ";
    const Run half = run(kTinyRun + "--outer-steps 1 " + first + "--out " + folder, spread_first ? ranks(2) : kMpiEnv);
    INFO(half.output);
    REQUIRE(half.status == 0);
    const Run rest = run(kTinyRun + "--outer-steps 2 " + second + "--resume " + folder, spread_first ? kMpiEnv : ranks(2));
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
  const Run one = run(kTiny + "--method reverse --out " + dir.path + "/one", kMpiEnv);
  REQUIRE(one.status == 0);
  const Run two = run(kTiny + "--method reverse --distribute data --sync-batch-norm --out " + dir.path + "/two", ranks(2));
  INFO(two.output);
  REQUIRE(two.status == 0);
  const nlohmann::json a = read_json(dir.path + "/one/results.json"), b = read_json(dir.path + "/two/results.json");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i]["theta"] == a[i]["theta"]);
    CHECK(rel(b[i]["val_loss"].get<double>(), a[i]["val_loss"].get<double>()) < 1e-4);
  }
  const Run columns = run(kTiny + "--distribute columns --sync-batch-norm", ranks(2));
  CHECK(columns.status != 0);
  CHECK(columns.output.find("--sync-batch-norm synchronizes the batch statistics of data-parallel training: it needs "
                            "--distribute data (got --distribute columns)") != std::string::npos);
}

TEST_CASE("--distribute outside mpirun, and columns for a method without them, are refused") {
  TempDir dir;
  const Run alone = run(kTiny + "--distribute columns");
  CHECK(alone.status != 0);
  CHECK(alone.output.find("--distribute columns runs under mpirun") != std::string::npos);
  const Run reverse = run(kTiny + "--method reverse --distribute columns", ranks(2));
  CHECK(reverse.status != 0);
  CHECK(reverse.output.find("--distribute columns spreads forward mode's columns over the ranks; method 'reverse'") !=
        std::string::npos);
}

// A rank lost mid-run under --distribute data: rank 1 killed (SIGKILL) at inner step 2 of outer
// step 1, while rank 0 waits for its part of a sum. mpirun ends the job and names the rank; the
// folder holds outer step 0 and resumes — on 2 ranks to the uninterrupted 2-rank run's files
// (timing aside), in one process to the one-process run within float32 rounding (outer step 0
// was computed on 2 ranks, the rest in one).
TEST_CASE("a rank killed mid-run under --distribute data: mpirun names it, and the folder resumes on 2 ranks and on 1") {
  TempDir dir;
  const std::string args = kSmall + "--method reverse ";
  REQUIRE(run(args + "--out " + dir.path + "/one", kMpiEnv).status == 0);
  REQUIRE(run(args + "--distribute data --out " + dir.path + "/two", ranks(2)).status == 0);
  const std::string cut = dir.path + "/cut";
  check_cut(args + "--distribute data --out " + cut, ranks(2), "GRADHPO_FAULT_KILL_RANK=1:1:2",
            "process rank 1 with PID", 1);
  fs::copy(cut, cut + "-alone", fs::copy_options::recursive);
  resume(cut, "--distribute data", ranks(2));
  same_files(cut, dir.path + "/two");
  resume(cut + "-alone", "", kMpiEnv);
  same_to_float32_rounding(cut + "-alone", dir.path + "/one");
}

// A rank's error mid-run: rank 1 throws at inner step 2 of outer step 1; the program's error path
// ends every rank (MPI_Abort) with "gradhpo: rank 1 of 2: error: ...", and the folder resumes
// to the uninterrupted run's files.
TEST_CASE("a rank that throws mid-run under --distribute data ends the job naming it, and the folder resumes") {
  TempDir dir;
  const std::string args = kSmall + "--method reverse --distribute data ";
  REQUIRE(run(args + "--out " + dir.path + "/two", ranks(2)).status == 0);
  const std::string cut = dir.path + "/cut";
  check_cut(args + "--out " + cut, ranks(2), "GRADHPO_FAULT_THROW_RANK=1:1:2",
            "gradhpo: rank 1 of 2: error: fault injected by GRADHPO_FAULT_THROW_RANK at outer step 1, inner step 2", 1);
  resume(cut, "--distribute data", ranks(2));
  same_files(cut, dir.path + "/two");
}

// Forward-mode columns: rank 0 — the one that writes the folder — killed at inner step 2 of
// outer step 1; the folder resumes on another rank count (1 rank under mpirun) to the
// one-process run's bits.
TEST_CASE("a rank killed mid-run under --distribute columns: the folder resumes on another rank count to the same bits") {
  TempDir dir;
  REQUIRE(run(kSmall + "--out " + dir.path + "/one", kMpiEnv).status == 0);
  const std::string cut = dir.path + "/cut";
  check_cut(kSmall + "--distribute columns --out " + cut, ranks(2), "GRADHPO_FAULT_KILL_RANK=0:1:2",
            "process rank 0 with PID", 1);
  resume(cut, "--distribute columns", ranks(1));
  same_bits(cut, dir.path + "/one");
}

TEST_CASE("a malformed fault injection is refused, naming the variable") {
  const Run r = run(kSmall + "--method reverse", "GRADHPO_FAULT_KILL_RANK=1:x " + ranks(1));
  CHECK(r.status != 0);
  CHECK(contains(r.output, "GRADHPO_FAULT_KILL_RANK='1:x': expected rank:outer:inner"));
}

#endif  // GRADHPO_MPIEXEC
