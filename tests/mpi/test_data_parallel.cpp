// Data-parallel inner training: with each rank holding a shard of every batch, every method
// that works through Unroll gives the single-process hypergradient to ≤ 1e-12 relative in
// float64 (the order of additions differs: one process sums a batch, N ranks sum shards and then
// the shards), the same bits on every rank, and the same bits again when run again. The toy
// problem has no batch norm; a tiny Wide ResNet checks synchronized batch norm (the whole
// batch's statistics: equal to one process) against per-rank statistics (not equal).
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <gradhpo/hpo/mpi/data_parallel.h>
#include <gradhpo/hpo/shard.h>
#include <gradhpo/hpo/solve.h>
#include <gradhpo/nn/models.h>

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

namespace {

/// A tiny pre-activation Wide ResNet (depth 10, widths 2-2-4-8: batch norm before every
/// convolution and before the classifier) on the formula data, full batch, float64: this rank's
/// shard of the 24 examples, or all of them.
hpo::ClassificationTask bn_task(int shard_count = 1, int shard_rank = 0) {
  nn::WideResNetOptions wo;
  wo.depth = 10;
  wo.base_width = 2;
  auto model = std::make_shared<nn::WideResNet>(Shape{1, 2, 2}, 3, wo);
  hpo::Hyperparameters h;
  h.add(hpo::Hyperparameters::learning_rate(2, 0.2));
  h.add(hpo::Hyperparameters::momentum(1, 0.5, hpo::Transform::sigmoid));
  h.add(hpo::Hyperparameters::weight_decay(1, 1e-3));
  nn::OptimizerConfig opt;
  opt.lr = nn::Schedule::constant(0.2);
  opt.momentum = 0.5;
  opt.weight_decay = 1e-3;
  hpo::ClassificationOptions co;
  co.batch_size = 0;
  co.dtype = DType::f64;
  co.shard_count = shard_count;
  co.shard_rank = shard_rank;
  return hpo::make_classification_task(model, formula_data(24, 0, "formula:train"), formula_data(16, 1000, "formula:val"),
                                       std::move(h), opt, 6, co);
}

/// bn_task's problem on this rank's shard, data-parallel over `comm` with or without
/// synchronized batch norm.
hpo::ClassificationTask bn_sharded(const Communicator& comm, bool sync) {
  hpo::ClassificationTask task = bn_task(comm.size(), comm.rank());
  mpi::train_data_parallel(task.problem, comm, {.sync_batch_norm = sync});
  return task;
}

}  // namespace

// Synchronized batch norm: the whole batch's statistics on every rank, and the sums of batch
// norm's rules over the whole batch, in reverse mode (its H·v and mixed products are
// forward-over-reverse through batch norm) and forward mode (K tangent directions through the
// statistics). Per-rank statistics give another training run: the option matters.
TEST_CASE("data-parallel batch norm: synchronized statistics give the single-process run, per-rank ones do not") {
  const Communicator comm = Communicator::world();
  const hpo::ClassificationTask whole = bn_task();
  const Tensor theta = whole.problem.hyper.initial();
  for (const char* method : {"reverse", "forward"}) {
    INFO(method << " on " << comm.size() << " ranks");
    const hpo::Hypergradient one = run_method(method, whole.problem, theta);
    const hpo::Hypergradient synced = run_method(method, bn_sharded(comm, true).problem, theta);
    CHECK(rel(synced.d_theta, one.d_theta) <= 1e-12);
    CHECK(std::abs(synced.val_loss - one.val_loss) <= 1e-12 * std::abs(one.val_loss));
    if (comm.size() == 1) CHECK(bits_of(synced.d_theta) == bits_of(one.d_theta));
    for (const std::string& b : comm.gather(bits_of(synced.d_theta))) CHECK(b == bits_of(synced.d_theta));
    CHECK(bits_of(run_method(method, bn_sharded(comm, true).problem, theta).d_theta) == bits_of(synced.d_theta));
    if (comm.size() > 1) {
      const hpo::Hypergradient per_rank = run_method(method, bn_sharded(comm, false).problem, theta);
      CHECK(rel(per_rank.d_theta, one.d_theta) > 1e-6);
    }
  }
}

TEST_CASE("data-parallel batch norm: θ learned with synchronized statistics is the single-process θ") {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  hpo::SolveOptions o;
  o.method = "reverse";
  o.outer.kind = hpo::OuterKind::adam;
  o.outer.step = {0.01};
  o.outer.max_steps = 3;
  const hpo::Summary one = hpo::solve(bn_task().problem, o);
  const hpo::Summary synced = hpo::solve(bn_sharded(comm, true).problem, o);
  REQUIRE(synced.rows.size() == one.rows.size());
  CHECK(rel(synced.theta, one.theta) <= 1e-12);
  for (std::size_t i = 0; i < one.rows.size(); ++i)
    CHECK(fd::rel_error(synced.rows[i].hypergradient, one.rows[i].hypergradient) <= 1e-12);
  for (const std::string& b : comm.gather(bits_of(synced.theta))) CHECK(b == bits_of(synced.theta));
  if (comm.size() > 1) CHECK(rel(hpo::solve(bn_sharded(comm, false).problem, o).theta, one.theta) > 1e-9);
}
