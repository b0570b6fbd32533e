// An experiment file's relative "data" folder is found from any working directory
// (tools/reproduce_config.h, resolve_data_folder): the shipped MNIST experiments name
// ../shared/data/mnist, relative to the repository root, and ran only from there.
#include "cli.h"

#include <filesystem>
#include <fstream>

#include "../data/temp_dir.h"

using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a relative data folder is searched from the experiment file's folder upwards") {
  // <tmp>/proj/tools/exp.json names ../data/mnist: <tmp>/proj/data/mnist is not there, but
  // <tmp>/data/mnist (relative to the folder above) is. Run from / so the working directory can't help.
  TempDir dir;
  fs::create_directories(dir.file("proj/tools"));
  fs::create_directories(dir.file("data/mnist"));  // empty: the loader then names where it looked
  std::ofstream(dir.file("proj/tools/exp.json")) << R"({"title": "t", "scaled": "tiny",
    "options": {"experiment": "l2", "dataset": "mnist", "data": "../data/mnist", "methods": ["random"],
                "budget-runs": 1, "threads": 1}})";
  const Run r = run("reproduce --config " + dir.file("proj/tools/exp.json") + " --out " + dir.file("out"), "", "/");
  INFO(r.output);
  CHECK(r.status != 0);  // no MNIST files in the fake folder
  const std::string found = fs::weakly_canonical(dir.file("data/mnist")).string();
  CHECK(has(r.output, "looked in:\n  " + found));
}

TEST_CASE("a shipped MNIST experiment finds ../shared/data from another working directory") {
  if (!fs::exists(fs::path(GRADHPO_SHARED_DATA) / "mnist")) {
    MESSAGE("skipped: no MNIST in " GRADHPO_SHARED_DATA);
    return;
  }
  TempDir dir;
  const Run r = run("reproduce cs6787-noisy --set budget-runs=1 --set train-size=100 --set val-size=100 --set threads=1 "
                    "--out " + dir.file("noisy"),
                    "", dir.path);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_FALSE(has(r.output, "no mnist files"));
  CHECK(has(r.output, "paper vs ours"));
}
