// `gradhpo reproduce` as a user runs it, on tiny overrides of the shipped experiments (seconds):
// the list, the help, a run folder with results, plots and index.html, the paper's numbers
// printed beside ours, the no-argument default, clear errors — and no progress bar drawn when
// stderr is not a terminal.
#include "cli.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

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

// The quickstart shrunk to a second: 10 steps, 2 runs per method, 300 training images.
const std::string kTinySets = "--set steps=10 --set budget-runs=2 --set train-size=300 --set val-size=200 --set threads=1";

/// No bar, no carriage return, no ETA in output captured through a pipe.
void check_no_progress_bar(const std::string& output) {
  CHECK(output.find('\r') == std::string::npos);
  CHECK(output.find("ETA") == std::string::npos);
}

}  // namespace

TEST_CASE("gradhpo reproduce --list shows every shipped experiment on one line") {
  const Run r = run("reproduce --list");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const char* name : {"quickstart", "ms-table1", "ms-table1-fashion", "cs6787-table1", "cs6787-noisy", "hippotrainer-poc"})
    CHECK_MESSAGE(("\n" + r.output).find("\n" + std::string(name) + " ") != std::string::npos, name);
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') >= 6);  // one line each, nothing else
}

TEST_CASE("gradhpo reproduce --help names the options") {
  const Run r = run("reproduce --help");
  REQUIRE(r.status == 0);
  for (const char* opt : {"--list", "--set", "--config", "--out", "GRADHPO_SET"})
    CHECK_MESSAGE(r.output.find(opt) != std::string::npos, opt);
}

TEST_CASE("gradhpo reproduce quickstart writes results, plots and index.html") {
  TempDir dir;
  const std::string out = dir.path + "/qs";
  const Run r = run("reproduce quickstart " + kTinySets + " --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("forward mode + sign") != std::string::npos);
  CHECK(r.output.find("random search") != std::string::npos);
  // The config's scale note is prose: what --set changed of it is printed beside it.
  CHECK(r.output.find("overridden here: steps=10 budget-runs=2 train-size=300 val-size=200 threads=1\n") !=
        std::string::npos);
  CHECK(r.output.find("plot: " + out + "/schedule.png") != std::string::npos);
  check_no_progress_bar(r.output);
  for (const char* f : {"config.json", "results.json", "results.csv", "reproduce.json", "index.html"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  const nlohmann::json results = read_json(out + "/results.json");
  REQUIRE(results["results"].size() == 2);
  CHECK(results["results"][0]["inner_steps"] == 20);  // the budget: 2 runs of 10 steps
  for (const nlohmann::json& row : results["results"])  // both accuracies of the row's θ, as fractions
    for (const char* key : {"val_accuracy", "test_accuracy"}) {
      INFO(key);
      REQUIRE(row[key].is_number());
      CHECK(row[key].get<double>() >= 0);
      CHECK(row[key].get<double>() <= 1);
    }
  CHECK(r.output.find("val acc") != std::string::npos);
  CHECK(read_json(out + "/config.json")["options"]["steps"] == 10);
  CHECK(slurp(out + "/results.csv").find("forward mode") != std::string::npos);
  check_pictures(out + "/schedule");
  check_pictures(out + "/comparison");
  const std::string index = slurp(out + "/index.html");
  CHECK(index.find("schedule.svg") != std::string::npos);
  CHECK(index.find("Methods at an equal budget") != std::string::npos);
}

TEST_CASE("gradhpo with no arguments runs reproduce quickstart into runs/quickstart") {
  TempDir dir;
  // $GRADHPO_SET shrinks it as --set would; the default run folder is relative to the caller.
  const Run r = run("", "GRADHPO_SET='steps=10 budget-runs=1 train-size=300 val-size=200 threads=1'", dir.path);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("gradhpo reproduce quickstart") != std::string::npos);
  CHECK(fs::exists(dir.path + "/runs/quickstart/schedule.png"));
}

TEST_CASE("gradhpo reproduce --config prints the paper's numbers beside ours") {
  TempDir dir;
  const std::string cfg = dir.file("mine.json"), out = dir.file("mine");
  std::ofstream(cfg) << R"({
    "title": "a test experiment", "scaled": "tiny",
    "paper": {"source": "Someone 2020, Table 9", "rows": [
      {"method": "forward", "label": "Theirs", "test_accuracy": 98.7, "test_loss": 0.0123},
      {"method": "random", "label": "Random", "test_accuracy": 97.6}]},
    "options": {"experiment": "schedule", "dataset": "fashion-mnist", "model": "mlp", "hidden": [8],
                "train-size": 300, "val-size": 200, "steps": 10, "batch-size": 100, "lr-blocks": 2,
                "methods": ["forward", "random"], "budget-runs": 2, "threads": 1}})";
  const Run r = run("reproduce --config " + cfg + " --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("paper vs ours (Someone 2020, Table 9)") != std::string::npos);
  for (const char* s : {"Theirs", "98.70", "0.0123", "97.60", "test accuracy (%)"}) CHECK_MESSAGE(r.output.find(s) != std::string::npos, s);
  const nlohmann::json rows = read_json(out + "/reproduce.json")["rows"];
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["paper"] == 98.7);
  CHECK(rows[0]["ours"].get<double>() > 0);
  check_pictures(out + "/paper_vs_ours");
  CHECK(slurp(out + "/paper_vs_ours.csv").find("Theirs") != std::string::npos);
}

TEST_CASE("gradhpo reproduce refuses unknown experiments, keys and out-of-range values") {
  const Run unknown = run("reproduce no-such-table");
  CHECK(unknown.status != 0);
  CHECK(unknown.output.find("unknown experiment 'no-such-table' (known: ") != std::string::npos);
  CHECK(unknown.output.find("quickstart") != std::string::npos);
  const Run key = run("reproduce quickstart --set colour=blue");
  CHECK(key.status != 0);
  CHECK(key.output.find("--set: unknown key 'colour'") != std::string::npos);
  const Run range = run("reproduce quickstart --set budget-runs=0");
  CHECK(range.status != 0);
  CHECK(range.output.find("'budget-runs' is 0; allowed [1, ") != std::string::npos);
  const Run method = run("reproduce quickstart --set methods=forward,magic");
  CHECK(method.status != 0);
  CHECK(method.output.find("'methods' has 'magic'; allowed: ") != std::string::npos);
  const Run none = run("reproduce");
  CHECK(none.status != 0);
  CHECK(none.output.find("name one experiment") != std::string::npos);
  TempDir dir;
  const std::string cfg = dir.file("bad.json");
  std::ofstream(cfg) << R"({"title": "t", "note": "n", "options": {}, "paper": {"rows": [{"method": "forward", "speed": 3}]}})";
  const Run metric = run("reproduce --config " + cfg);
  CHECK(metric.status != 0);
  CHECK(metric.output.find(cfg + ": paper: row 'forward' has the unknown metric 'speed'") != std::string::npos);
  std::ofstream(cfg, std::ios::trunc) << R"({"title": "t", "options": {}})";
  CHECK(run("reproduce --config " + cfg).output.find("neither 'scaled' nor 'note'") != std::string::npos);
  std::ofstream(cfg, std::ios::trunc) << R"({"title": "t", "note": "n", "options": {"steps": -3}})";
  CHECK(run("reproduce --config " + cfg).output.find(cfg + ": options: 'steps' is -3; allowed [1, ") != std::string::npos);
}
