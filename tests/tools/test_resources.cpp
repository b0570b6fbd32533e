// Resources before work, through the program: a run that cannot fit in memory is refused before
// training with what would fit, and threads above the process's cores are capped with a warning.
#include "cli.h"

#include <unistd.h>

#include <filesystem>
#include <string>

using gradhpo::testing::Run;
using gradhpo::testing::run;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A run folder path of this test's own, absent.
std::string scratch(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("gradhpo-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE("hpo refuses reverse store-all over 57 million steps before training, naming what fits") {
  // 1000 epochs of batch 1 on Fashion-MNIST's 57,000 training images: T = 57,000,000 stored
  // states of LeNet-5 (~40 TB). It grew at ~100 MB/s until std::bad_alloc.
  const std::string out = scratch("57m");
  const Run r = run("hpo --method reverse --epochs 1000 --batch-size 1 --threads 1 --out " + out);
  std::filesystem::remove_all(out);
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(has(r.output, "T = 57000000"));
  CHECK(has(r.output, "reverse: this run needs about "));
  CHECK(has(r.output, " TB for the method's own buffers"));
  CHECK(has(r.output, "is available ("));
  CHECK(has(r.output, "Refused before any work."));
  CHECK(has(r.output, "policy=checkpoint checkpoint-every=7550: about "));
  CHECK(has(r.output, "policy=exact-reversal: about "));
  CHECK_FALSE(has(r.output, "bad_alloc"));
  CHECK_FALSE(has(r.output, "outer step 1"));  // no step was taken
}

TEST_CASE("threads above the process's cores are capped with a warning, per MPI rank") {
  // The refused run of the case above: it sets its threads, warns, and stops before training.
  const std::string out = scratch("threads");
  const std::string args = "hpo --method reverse --epochs 1000 --batch-size 1 --threads 256 --out " + out;
  const Run r = run(args);
  std::filesystem::remove_all(out);
  INFO(r.output);
  CHECK(has(r.output, "warning: 256 threads requested, but this process may use "));
  CHECK(has(r.output, "in the affinity mask"));
  CHECK(has(r.output, "Refused before any work."));
  // Two ranks of an MPI job on this machine: each says it has its share.
  const Run shared = run(args, "OMPI_COMM_WORLD_LOCAL_SIZE=2");
  std::filesystem::remove_all(out);
  INFO(shared.output);
  CHECK(has(shared.output, "shared by 2 MPI ranks on this machine"));
  // A request within the cores: no warning.
  const Run one = run("hpo --method reverse --epochs 1000 --batch-size 1 --threads 1 --out " + out);
  std::filesystem::remove_all(out);
  CHECK(has(one.output, "Refused before any work."));
  CHECK_FALSE(has(one.output, "warning"));
}
