// Data-parallel inner training: with each rank holding a shard of every batch, every method
// that works through Unroll gives the single-process hypergradient to ≤ 1e-12 relative in
// float64 (the order of additions differs: one process sums a batch, N ranks sum shards and then
// the shards), the same bits on every rank, and the same bits again when run again.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <gradhpo/hpo/mpi/data_parallel.h>
#include <gradhpo/hpo/shard.h>

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

/// The toy problem's hypergradient by `method`, on this rank's shard with the sums over `comm`.
hpo::Hypergradient sharded(const Communicator& comm, ToySpec spec, const std::string& method,
                           const std::map<std::string, std::string>& options) {
  spec.shard_count = comm.size();
  spec.shard_rank = comm.rank();
  hpo::ClassificationTask task = toy_task(spec);
  mpi::train_data_parallel(task.problem, comm);
  return run_method(method, task.problem, task.problem.hyper.initial(), options);
}

void check_equal_to_one_process(const ToySpec& spec, const std::string& method,
                                const std::map<std::string, std::string>& options = {}) {
  const Communicator comm = Communicator::world();
  const hpo::ClassificationTask whole = toy_task(spec);
  const hpo::Hypergradient one = run_method(method, whole.problem, whole.problem.hyper.initial(), options);
  const hpo::Hypergradient many = sharded(comm, spec, method, options);
  INFO(method << " on " << comm.size() << " ranks");
  CHECK(rel(many.d_theta, one.d_theta) <= 1e-12);
  CHECK(std::abs(many.val_loss - one.val_loss) <= 1e-12 * std::abs(one.val_loss));
  if (comm.size() == 1) CHECK(bits_of(many.d_theta) == bits_of(one.d_theta));
  // Every rank took the same steps: the same bits everywhere, and again on a second run.
  for (const std::string& b : comm.gather(bits_of(many.d_theta))) CHECK(b == bits_of(many.d_theta));
  CHECK(bits_of(sharded(comm, spec, method, options).d_theta) == bits_of(many.d_theta));
}

}  // namespace

TEST_CASE("shard_of: contiguous shards in rank order that cover the batch") {
  std::int64_t next = 0;
  for (int r = 0; r < 3; ++r) {
    const hpo::Shard s = hpo::shard_of(8, r, 3);
    CHECK(s.begin == next);
    CHECK((s.size() == 3 || s.size() == 2));
    next = s.end;
  }
  CHECK(next == 8);
  CHECK(contains(error_of([] { hpo::shard_of(3, 0, 4); }), "a batch of 3 examples cannot be split over 4 processes"));
  CHECK(contains(error_of([] { hpo::shard_of(8, 4, 4); }), "shard 4 of 4: no such shard"));
}

TEST_CASE("data-parallel reverse mode, every memory policy, mini-batches with example weights") {
  ToySpec spec;  // SGD, mini-batches of 8, per-tensor L2 and example weights: every kind of term
  spec.horizon = 24;
  for (const char* policy : {"store-all", "exact-reversal", "checkpoint"})
    check_equal_to_one_process(spec, "reverse", {{"policy", policy}});
}

TEST_CASE("data-parallel forward mode and the full batch") {
  ToySpec spec;
  spec.horizon = 16;
  spec.batch_size = 0;
  check_equal_to_one_process(spec, "forward");
  check_equal_to_one_process(spec, "reverse");
}

TEST_CASE("data-parallel with Adam") {
  ToySpec spec;
  spec.optimizer = nn::OptimizerKind::adam;
  spec.horizon = 16;
  check_equal_to_one_process(spec, "reverse");
  check_equal_to_one_process(spec, "forward");
}
