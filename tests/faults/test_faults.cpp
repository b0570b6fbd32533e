// Fault injection (ctest -L faults): `gradhpo hpo`, `gradhpo compare` and a random search on
// toy problems, killed at every commit of the run store in turn (GRADHPO_FAULT_AT_COMMIT=n makes
// the n-th commit_file kill the process between writing its temporary file and the rename,
// hpo/run_store.h), then resumed — or, when the kill came before the run's first record was on
// disk, started again in the same folder — and checked to end with the uninterrupted run's bits
// (timing fields aside). Every n from 1 until a run with that n finishes without being killed.
#include "../tools/cli.h"

#include <filesystem>
#include <functional>

#include "../data/temp_dir.h"
#include "../tools/run_files.h"

using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
using gradhpo::testing::read_json;
namespace fs = std::filesystem;

namespace {

/// `j` without its wall-time fields ("seconds", at any depth).
nlohmann::json without_timing(nlohmann::json j) {
  if (j.is_object()) {
    j.erase("seconds");
    j.erase("calibration_seconds");
    for (auto& [key, value] : j.items()) value = without_timing(value);
  } else if (j.is_array()) {
    for (auto& value : j) value = without_timing(value);
  }
  return j;
}

/// Runs `command + args` whole, then once per commit point n killed there and resumed with
/// `command --resume`, and checks every file of `files` against the whole run's.
void check_every_commit(const std::string& command, const std::string& args, const std::vector<std::string>& files) {
  TempDir dir;
  const std::string whole = dir.path + "/whole";
  const Run first = run(command + " " + args + " --out " + whole);
  INFO(first.output);
  REQUIRE(first.status == 0);
  int killed = 0;
  for (int n = 1;; ++n) {
    CAPTURE(n);
    const std::string cut = dir.path + "/cut" + std::to_string(n);
    const Run r = run(command + " " + args + " --out " + cut, "GRADHPO_FAULT_AT_COMMIT=" + std::to_string(n));
    INFO(r.output);
    if (r.status == 0) break;  // n is past the run's last commit
    REQUIRE((r.status == 128 + 9 || r.status == -1));  // SIGKILL (as the shell reports it), not an error
    ++killed;
    // Never a half-written file: every file there is whole (the temporary one aside).
    const bool recorded = fs::exists(cut + "/run.state");
    const Run resumed = recorded ? run(command + " --resume " + cut) : run(command + " " + args + " --out " + cut);
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    for (const std::string& f : files) {
      CAPTURE(f);
      CHECK(without_timing(read_json(cut + "/" + f)) == without_timing(read_json(whole + "/" + f)));
    }
    for (const auto& entry : fs::directory_iterator(cut)) CHECK(entry.path().extension() != ".tmp");
    fs::remove_all(cut);
    REQUIRE(n < 200);
  }
  MESSAGE(command << ": killed and resumed at each of " << killed << " commits");
  CHECK(killed >= 3);
}

}  // namespace

TEST_CASE("gradhpo hpo killed at every commit of its run store resumes to the uninterrupted run's bits") {
  check_every_commit("hpo",
                     "--model mlp --train-limit 128 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 "
                     "--outer-steps 2 --no-plots",
                     {"results.json", "summary.json", "config.json"});
}

TEST_CASE("gradhpo compare killed at every commit of its run store resumes to the uninterrupted run's bits") {
  check_every_commit("compare",
                     "--experiment schedule --dataset fashion-mnist --model mlp --hidden 8 --train-size 200 "
                     "--val-size 100 --steps 6 --batch-size 50 --lr-blocks 2 --methods forward,hd --budget-runs 2 "
                     "--equalise none --threads 1 --no-plots",
                     {"results.json", "config.json"});
}

TEST_CASE("a random search killed at every commit of its run store resumes to the uninterrupted run's bits") {
  check_every_commit("compare",
                     "--experiment l2 --dataset fashion-mnist --train-size 200 --val-size 100 --steps 5 "
                     "--methods random,grid --budget-runs 3 --equalise none --search-seed 7 --threads 1 --no-plots",
                     {"results.json", "config.json"});
}
