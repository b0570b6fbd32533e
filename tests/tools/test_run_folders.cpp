// Run folders as a user meets them (issue 19): a folder that holds a run is never reused
// silently, --resume continues only what it can continue to the same bits, every output folder
// is checked before any work, flags on the command line win over --config, a diverging cosine
// schedule is a failed trial, and each line of a comparison's header is printed once.
#include "cli.h"

#include <filesystem>
#include <fstream>

#include "../data/temp_dir.h"
#include "run_files.h"

using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
using gradhpo::testing::read_json;
namespace fs = std::filesystem;

namespace {

// An MLP on 128 Fashion-MNIST images: 2 inner steps per outer step, no plots.
const std::string kTiny =
    "hpo --model mlp --train-limit 128 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 --no-plots ";
const std::string kTinyCompare =
    "compare --experiment schedule --dataset fashion-mnist --model mlp --hidden 8 --train-size 200 --val-size 100 "
    "--steps 6 --batch-size 50 --lr-blocks 2 --budget-runs 2 --threads 1 --no-plots ";

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a folder that holds a run is refused unless --resume or --overwrite, and nothing of it changes") {
  TempDir dir;
  const std::string out = dir.path + "/run";
  REQUIRE(run(kTiny + "--outer-steps 1 --seed 3 --out " + out).status == 0);
  const nlohmann::json rows = read_json(out + "/results.json");
  const Run again = run(kTiny + "--outer-steps 1 --seed 4 --out " + out);
  INFO(again.output);
  CHECK(again.status != 0);
  CHECK(again.output.find("already holds a run; continue it with --resume") != std::string::npos);
  CHECK(again.output.find("gradhpo hpo:") == std::string::npos);  // refused before any work
  CHECK(read_json(out + "/config.json")["seed"] == 3);
  CHECK(read_json(out + "/results.json") == rows);
  // --overwrite replaces it whole: config and results are the new run's.
  const Run over = run(kTiny + "--outer-steps 1 --seed 4 --overwrite --out " + out);
  INFO(over.output);
  REQUIRE(over.status == 0);
  CHECK(read_json(out + "/config.json")["seed"] == 4);
  CHECK(read_json(out + "/results.json") != rows);
}

TEST_CASE("--resume of a folder that does not exist, or holds no run, is an error and creates nothing") {
  TempDir dir;
  const Run missing = run("hpo --resume " + dir.path + "/nothing");
  CHECK(missing.status != 0);
  CHECK(missing.output.find("there is no such folder to resume") != std::string::npos);
  CHECK(!fs::exists(dir.path + "/nothing"));
  const Run empty = run("compare --resume " + dir.path);
  CHECK(empty.status != 0);
  CHECK(empty.output.find("holds no run to resume") != std::string::npos);
}

TEST_CASE("--resume refuses a flag that conflicts with the stored run, naming it, and takes threads and more outer steps") {
  TempDir dir;
  const std::string out = dir.path + "/run";
  REQUIRE(run(kTiny + "--outer-steps 1 --out " + out).status == 0);
  const nlohmann::json one = read_json(out + "/results.json");
  REQUIRE(one.size() == 1);
  for (const std::string& flag : {"--seed 9", "--lr-blocks 3", "--outer-steps 0", "--gamma-lr 0.2"}) {
    CAPTURE(flag);
    const Run r = run("hpo --resume " + out + " " + flag);
    CHECK(r.status != 0);
    const std::string key = flag.substr(0, flag.find(' '));
    if (flag != "--outer-steps 0") CHECK(r.output.find(key + " ") != std::string::npos);
    if (flag != "--outer-steps 0") CHECK(r.output.find("conflicts with the stored run's") != std::string::npos);
  }
  CHECK(read_json(out + "/results.json") == one);
  const Run more = run("hpo --resume " + out + " --outer-steps 2 --threads 2");
  INFO(more.output);
  REQUIRE(more.status == 0);
  const nlohmann::json two = read_json(out + "/results.json");
  REQUIRE(two.size() == 2);
  CHECK(two[0] == one[0]);
  CHECK(read_json(out + "/config.json")["outer-steps"] == 2);
  // A comparison keeps its budget.
  const std::string cmp = dir.path + "/cmp";
  REQUIRE(run(kTinyCompare + "--methods random --out " + cmp).status == 0);
  const Run budget = run("compare --resume " + cmp + " --budget-runs 3");
  CHECK(budget.status != 0);
  CHECK(budget.output.find("--budget-runs 3 conflicts with the stored run's budget-runs 2") != std::string::npos);
}

TEST_CASE("flags given on the command line override --config, and --set overrides both") {
  TempDir dir;
  const std::string cfg = dir.path + "/c.json", out = dir.path + "/run";
  std::ofstream(cfg) << R"({"outer-steps": 1, "lr-blocks": 3, "seed": 5})";
  const Run r = run(kTiny + "--config " + cfg + " --set seed=6 --out " + out);  // kTiny has --lr-blocks 2
  INFO(r.output);
  REQUIRE(r.status == 0);
  const nlohmann::json config = read_json(out + "/config.json");
  CHECK(config["lr-blocks"] == 2);   // the flag, not the file
  CHECK(config["outer-steps"] == 1); // the file, over the default
  CHECK(config["seed"] == 6);        // --set
  // compare has --config and --set too.
  std::ofstream(cfg, std::ios::trunc) << R"({"methods": ["random"], "budget-runs": 3})";
  const std::string cmp = dir.path + "/cmp";
  const Run c = run(kTinyCompare + "--config " + cfg + " --set search-seed=4 --out " + cmp);
  INFO(c.output);
  REQUIRE(c.status == 0);
  const nlohmann::json cc = read_json(cmp + "/config.json");
  CHECK(cc["budget-runs"] == 2);  // the flag in kTinyCompare wins over the file's 3
  CHECK(cc["methods"] == nlohmann::json::array({"random"}));
  CHECK(cc["search-seed"] == 4);
}

TEST_CASE("every subcommand checks its output folder before any work") {
  TempDir dir;
  std::ofstream(dir.path + "/file") << "not a folder";
  const std::string bad = dir.path + "/file/run";
  for (const std::string& cmd : {kTinyCompare + "--methods forward,random --out " + bad, kTiny + "--out " + bad,
                                 std::string("reproduce quickstart --set steps=10 --out ") + bad}) {
    CAPTURE(cmd);
    const Run r = run(cmd);
    CHECK(r.status != 0);
    CHECK(r.output.find("cannot create the run folder") != std::string::npos);
    CHECK(r.output.find("method ") == std::string::npos);  // no table: nothing ran
    CHECK(r.output.find("outer ") == std::string::npos);
  }
}

TEST_CASE("gradhpo hpo --method cosine records a diverging schedule as a failed trial and goes on") {
  TempDir dir;
  const std::string out = dir.path + "/cosine";
  // 8 inner steps: at lr0 = 100 the training loss passes the problem's bound at step 2.
  const std::string tiny = "hpo --model mlp --train-limit 512 --batch-size 64 --epochs 1 --threads 1 --no-plots ";
  const Run r = run(tiny + "--method cosine --cosine-lrs 0.1,100 --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("cosine lr0 = 100: failed at inner step") != std::string::npos);
  CHECK(r.output.find("best lr0 = 0.1") != std::string::npos);
  const nlohmann::json results = read_json(out + "/results.json");
  REQUIRE(results["failed_trials"].size() == 1);
  CHECK(results["failed_trials"][0]["hyperparameters"]["lr0"] == 100);
  CHECK(results["failed_trials"][0]["inner_step"] == 2);
  CHECK(results["failed_trials"][0]["reason"].get<std::string>().find("diverged at step 2") != std::string::npos);
  CHECK(results["failed_trials"][0]["value"].get<double>() > 1e6);  // the training loss above the bound
  REQUIRE(results["trials"].size() == 1);
  CHECK(results.contains("test_accuracy"));
  // Every schedule diverging: no schedule to report, status 2 (no result), the failures still written.
  const std::string all = dir.path + "/all";
  const Run none = run(tiny + "--method cosine --cosine-lrs 100 --out " + all);
  CHECK(none.status == 2);
  CHECK(none.output.find("warning: every initial learning rate of the cosine schedule diverged") != std::string::npos);
  CHECK(read_json(all + "/results.json")["failed_trials"].size() == 1);
}

TEST_CASE("a comparison prints its problem and run folder once, and a reproduction replaces its own default folder") {
  TempDir dir;
  const Run c = run(kTinyCompare + "--methods random --out " + dir.path + "/cmp");
  INFO(c.output);
  REQUIRE(c.status == 0);
  CHECK(count(c.output, "L_train:") == 1);
  CHECK(count(c.output, "run folder:") == 1);
  // One seed: each seed's table names the problem once (the quickstart runs 3).
  const std::string tiny = "GRADHPO_SET='steps=10 budget-runs=1 train-size=300 val-size=200 threads=1 seeds=1'";
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    const Run r = run("reproduce quickstart --no-plots", tiny, dir.path);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(count(r.output, "L_train:") == 1);
    CHECK(count(r.output, "run folder:") == 1);
  }
  // A folder given with --out is the user's: reusing it needs --overwrite.
  REQUIRE(run("reproduce quickstart --no-plots --out " + dir.path + "/mine", tiny).status == 0);
  const Run twice = run("reproduce quickstart --no-plots --out " + dir.path + "/mine", tiny);
  CHECK(twice.status != 0);
  CHECK(twice.output.find("already holds a run") != std::string::npos);
}
