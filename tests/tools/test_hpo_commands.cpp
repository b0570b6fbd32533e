// The hyperparameter-optimization subcommands as a user runs them, on tiny problems (seconds):
// exit codes, the run folder's files and JSON schema, plots that are real pictures, a run
// killed mid-way and resumed to the same numbers, and clear errors for bad configs and data.
#include "cli.h"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include "../data/temp_dir.h"
#include "run_files.h"

using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
using gradhpo::testing::check_pictures;
using gradhpo::testing::read_json;
using gradhpo::testing::slurp;
namespace fs = std::filesystem;

namespace {

// LeNet-5 on 256 Fashion-MNIST images: 4 inner steps per outer step.
const std::string kTiny = "hpo --model lenet5 --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 ";

}  // namespace

TEST_CASE("gradhpo hpo --help lists every option with its default") {
  const Run r = run("hpo --help");
  REQUIRE(r.status == 0);
  for (const char* opt : {"--method", "--lr-blocks", "--gamma-lr", "--clip-hessian", "--out", "--resume", "--config", "--set"})
    CHECK_MESSAGE(r.output.find(opt) != std::string::npos, opt);
  CHECK(r.output.find("--lr-blocks INT:INT in [1 - 100000]=10") != std::string::npos);  // range and default
  // Every offline method's own options have flags, generated from the registry's typed lists.
  for (const char* opt : {"--solver", "--iterations", "--neumann-alpha", "--darts-radius", "--gamma", "--radix-bits",
                          "--checkpoint-every", "--truncate-alternate"})
    CHECK_MESSAGE(r.output.find(opt) != std::string::npos, opt);
  CHECK(r.output.find("ift: ") != std::string::npos);  // the help says which method declares the option
}

TEST_CASE("gradhpo hpo gives a method's own flags to that method and refuses another method's") {
  const Run wrong = run(kTiny + "--method forward --solver exact --outer-steps 1");
  CHECK(wrong.status != 0);
  CHECK(wrong.output.find("--solver is not an option of method 'forward'") != std::string::npos);
  const Run bad = run(kTiny + "--method reverse --checkpoint-every -3 --outer-steps 1");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("reverse: option 'checkpoint-every' is -3, out of range") != std::string::npos);
}

TEST_CASE("gradhpo hpo writes a run folder: config, results JSON and CSV, plots, index.html") {
  TempDir dir;
  const std::string out = dir.path + "/run";
  const Run r = run(kTiny + "--outer-steps 2 --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("test accuracy") != std::string::npos);
  for (const char* f : {"config.json", "results.json", "results.csv", "summary.json", "index.html", "run.state"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  const nlohmann::json config = read_json(out + "/config.json");
  CHECK(config["lr-blocks"] == 2);
  const nlohmann::json rows = read_json(out + "/results.json");
  REQUIRE(rows.is_array());
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    CHECK(row["hyperparameters"].contains("lr[0]"));
    CHECK(row["hyperparameters"].contains("momentum"));
    CHECK(row["hypergradient"].size() == 4);
    CHECK(row["val_loss"].get<double>() > 0);
  }
  CHECK(rows[1]["hyperparameters"]["lr[0]"].get<double>() != rows[0]["hyperparameters"]["lr[0]"].get<double>());
  check_pictures(out + "/schedule");
  check_pictures(out + "/val_loss");
  CHECK(slurp(out + "/index.html").find("schedule.svg") != std::string::npos);
}

namespace {

/// Runs `args` to the end in one folder; runs it again in another, kills it once its first
/// outer step is committed, resumes it, and checks that both folders hold the same `rows` rows.
void check_kill_and_resume(const std::string& args, std::size_t rows) {
  TempDir dir;
  const std::string whole = dir.path + "/whole", cut = dir.path + "/cut";
  REQUIRE(run(args + " --out " + whole).status == 0);
  // Start the same run in the background and kill it once its first outer step is committed
  // (results.json is derived from the run store after each commit).
  const std::string cmd = std::string(GRADHPO_CLI) + " " + args + " --out " + cut + " > /dev/null 2>&1 & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  int pid = 0;
  REQUIRE(std::fscanf(p, "%d", &pid) == 1);
  pclose(p);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(cut + "/results.json") && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(fs::exists(cut + "/run.state"));
  const std::size_t done = read_json(cut + "/results.json").size();
  INFO("rows before the kill: " << done);
  CHECK(done < rows);  // it really was cut off
  const Run resumed = run("hpo --resume " + cut);
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(resumed.output.find("resuming") != std::string::npos);
  const nlohmann::json a = read_json(whole + "/results.json"), b = read_json(cut + "/results.json");
  REQUIRE(a.size() == rows);
  REQUIRE(b.size() == rows);
  for (std::size_t i = 0; i < rows; ++i) {
    CHECK(a[i]["first_inner"] == b[i]["first_inner"]);
    CHECK(a[i]["hyperparameters"] == b[i]["hyperparameters"]);  // doubles compared exactly
    CHECK(a[i]["val_loss"] == b[i]["val_loss"]);
    CHECK(a[i]["hypergradient"] == b[i]["hypergradient"]);
  }
  // A corrupt run store is refused, naming the file.
  std::string bytes = slurp(cut + "/run.state");
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(cut + "/run.state", std::ios::binary | std::ios::trunc) << bytes;
  const Run bad = run("hpo --resume " + cut);
  CHECK(bad.status != 0);
  CHECK(bad.output.find("run.state' is corrupt") != std::string::npos);
}

}  // namespace

TEST_CASE("an interrupted gradhpo hpo run resumes to the same numbers as an uninterrupted one") {
  check_kill_and_resume(kTiny + "--outer-steps 3", 3);
}

TEST_CASE("an interrupted greedy gradhpo hpo run resumes mid-pass to the same numbers") {
  // 4 inner steps, segments of 2: two updates per pass, the first checkpoint mid-pass (the
  // carried weights and momentum are in it), two passes.
  check_kill_and_resume(kTiny + "--method forward-greedy --outer-steps 2", 4);
}

TEST_CASE("a greedy gradhpo hpo run scores each pass end on the test set and reports the best by validation") {
  TempDir dir;
  const std::string out = dir.path + "/greedy";
  const Run r = run(kTiny + "--method forward-greedy --outer-steps 2 --out " + out);  // 2 passes of 2 updates
  INFO(r.output);
  REQUIRE(r.status == 0);
  const nlohmann::json rows = read_json(out + "/results.json");
  REQUIRE(rows.size() == 4);
  int best = -1;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const bool pass_end = i % 2 == 1;  // the second update of each pass ends on step T
    CHECK(rows[i].contains("pass_end") == pass_end);
    CHECK(rows[i].contains("test_accuracy") == pass_end);
    if (pass_end && (best < 0 || rows[i]["val_loss"] < rows[best]["val_loss"])) best = static_cast<int>(i);
  }
  REQUIRE(best >= 0);
  std::ostringstream expected;
  expected << "update " << rows[best]["step"].get<int>() << "): test accuracy " << std::fixed << std::setprecision(2)
           << 100 * rows[best]["test_accuracy"].get<double>() << "%";
  CHECK(r.output.find("the best pass end by validation loss") != std::string::npos);
  CHECK(r.output.find(expected.str()) != std::string::npos);
  CHECK(read_json(out + "/summary.json")["best_test_accuracy"] == rows[best]["test_accuracy"]);
}

TEST_CASE("gradhpo hpo: bad configs, overrides and data are refused with the file, key and range") {
  TempDir dir;
  const std::string cfg = dir.path + "/c.json";
  std::ofstream(cfg) << R"({"lr-blocks": 4, "colour": "blue"})";
  const Run unknown = run("hpo --config " + cfg);
  CHECK(unknown.status != 0);
  CHECK(unknown.output.find(cfg + ": unknown key 'colour'") != std::string::npos);
  std::ofstream(cfg, std::ios::trunc) << R"({"lr-blocks": 0})";
  const Run range = run("hpo --config " + cfg);
  CHECK(range.status != 0);
  CHECK(range.output.find("'lr-blocks' is 0; allowed [1, 100000]") != std::string::npos);
  std::ofstream(cfg, std::ios::trunc) << "{not json";
  CHECK(run("hpo --config " + cfg).output.find("is not valid JSON") != std::string::npos);
  const Run nan = run("hpo --set gamma-lr=nan");
  CHECK(nan.status != 0);
  CHECK(nan.output.find("'gamma-lr' must be a number") != std::string::npos);
  const Run missing = run("hpo --dataset mnist --data /nonexistent/folder");
  CHECK(missing.status != 0);
  CHECK(missing.output.find("/nonexistent/folder") != std::string::npos);
  const Run seed = run("hpo --seed -1");
  CHECK(seed.status != 0);
}

TEST_CASE("gradhpo check prints the exactness ladder, and gradhpo hypervariance its table") {
  const Run check = run("check --experiment cleaning --dataset fashion-mnist --train-size 100 --val-size 100 --steps 10 --threads 1");
  INFO(check.output);
  REQUIRE(check.status == 0);
  for (const char* m : {"reverse, store-all", "reverse, exact reversal", "DrMAD", "T1-T2"})
    CHECK_MESSAGE(check.output.find(m) != std::string::npos, m);
  TempDir dir;
  const Run hv = run("hypervariance --model lenet5 --train-limit 128 --batch-size 32 --steps 4 --blocks 2 --perturbations 2 "
                     "--threads 1 --out " + dir.path);
  INFO(hv.output);
  REQUIRE(hv.status == 0);
  CHECK(hv.output.find("sign fluctuation") != std::string::npos);
  check_pictures(dir.path + "/hypervariance");
}
