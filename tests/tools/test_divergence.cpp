// Divergence as data in `gradhpo hpo`, as a user meets it: an outer loop that keeps getting
// rejected stops with a warning and exit status 2 instead of reporting its θ as learned (a
// diverging cosine learning rate, a failed trial: test_run_folders.cpp). Values leave no range:
// the learned momentum and weight decay never go below 0.
#include "cli.h"

#include <cmath>

#include "../data/temp_dir.h"
#include "run_files.h"

using gradhpo::testing::read_json;
using gradhpo::testing::Run;
using gradhpo::testing::run;
using gradhpo::testing::TempDir;

namespace {

// LeNet-5 on 256 Fashion-MNIST images: 4 inner steps per run.
const std::string kTiny = "hpo --model lenet5 --train-limit 256 --batch-size 64 --epochs 1 --lr-blocks 2 --threads 1 ";

}  // namespace

TEST_CASE("gradhpo hpo: an outer loop that keeps getting rejected warns and exits 2, and weight decay stays >= 0") {
  TempDir dir;
  const std::string out = dir.path + "/run";
  // γ = 100 for the rates: each rejection halves it, and the runs keep diverging.
  const Run r = run(kTiny + "--gamma-lr 100 --outer-steps 20 --out " + out);
  INFO(r.output);
  CHECK(r.status == 2);
  CHECK(r.output.find("warning: gave up: 6 diverged inner runs (more than max-rejections = 5)") != std::string::npos);
  const nlohmann::json rows = read_json(out + "/results.json");
  int rejected = 0, clipped = 0;
  for (const nlohmann::json& row : rows) {
    CHECK(row["hyperparameters"]["weight_decay"].get<double>() >= 0);
    CHECK(row["hyperparameters"]["momentum"].get<double>() >= 0);
    if (row["rejected"].get<bool>()) {
      ++rejected;
      CHECK(row["failure"]["reason"].get<std::string>().find("diverged") != std::string::npos);
      CHECK(row["failure"]["inner_step"].get<int>() >= 0);
    }
    if (row.contains("clipped")) ++clipped;
  }
  CHECK(rejected == 6);
  CHECK(clipped > 0);  // momentum and weight decay pushed below 0 and projected back
}
