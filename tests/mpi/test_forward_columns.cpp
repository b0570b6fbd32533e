// Forward mode with the columns of Z spread over the ranks ("forward-columns"): the
// single-process forward hypergradient — bit for bit under GRADHPO_GEMM=eigen (ctest runs the
// suite so at every rank count), to 1e-13 relative under the default GEMM planner — the same
// bits on every rank, directly and through hpo::solve.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gradhpo/hpo/mpi/forward_columns.h>
#include <gradhpo/hpo/solve.h>

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

bool gemm_is_eigen() {
  const char* g = std::getenv("GRADHPO_GEMM");
  return g && std::string(g) == "eigen";
}

Communicator registered() {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  mpi::register_distributed_methods(comm);
  return comm;
}

void check_same_as_forward(const ToySpec& spec) {
  const Communicator comm = registered();
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor theta = task.problem.hyper.initial();
  const hpo::Hypergradient one = run_method("forward", task.problem, theta);
  const hpo::Hypergradient many = run_method("forward-columns", task.problem, theta);
  INFO(comm.size() << " ranks, N = " << theta.numel());
  CHECK(rel(many.d_theta, one.d_theta) <= 1e-13);
  if (gemm_is_eigen() || comm.size() == 1) CHECK(bits_of(many.d_theta) == bits_of(one.d_theta));
  for (const std::string& b : comm.gather(bits_of(many.d_theta))) CHECK(b == bits_of(many.d_theta));
  CHECK(many.cost.directions == hpo::shard_of(theta.numel(), comm.rank(), comm.size()).size());
}

}  // namespace

TEST_CASE("forward-columns: SGD with every kind of group, and Adam") {
  ToySpec spec;  // lr blocks, momentum, weight decay, per-tensor L2, example weights
  spec.horizon = 20;
  check_same_as_forward(spec);
  spec.optimizer = nn::OptimizerKind::adam;
  check_same_as_forward(spec);
}

TEST_CASE("forward-columns through hpo::solve: the same outer steps on every rank") {
  const Communicator comm = registered();
  ToySpec spec = schedule_spec();
  spec.horizon = 20;
  const hpo::ClassificationTask task = toy_task(spec);
  hpo::SolveOptions o;
  o.outer.kind = hpo::OuterKind::sign;
  o.outer.step = {0.01, 0.05};
  o.outer.max_steps = 3;
  o.method = "forward";
  const hpo::Summary one = hpo::solve(task.problem, o);
  o.method = "forward-columns";
  const hpo::Summary many = hpo::solve(task.problem, o);
  REQUIRE(many.rows.size() == one.rows.size());
  for (std::size_t i = 0; i < one.rows.size(); ++i) {
    const std::vector<double>& a = many.rows[i].hypergradient;
    const std::vector<double>& b = one.rows[i].hypergradient;
    CHECK(fd::rel_error(a, b) <= 1e-13);
  }
  for (const std::string& b : comm.gather(bits_of(many.theta))) CHECK(b == bits_of(many.theta));
}

TEST_CASE("forward-columns: fewer columns than ranks is refused on every rank") {
  const Communicator comm = registered();
  if (comm.size() == 1) return;
  ToySpec spec = schedule_spec();
  spec.lr_blocks = 1;
  spec.learn_momentum = false;  // N = 1
  spec.horizon = 4;
  const hpo::ClassificationTask task = toy_task(spec);
  CHECK(contains(error_of([&] { run_method("forward-columns", task.problem, task.problem.hyper.initial()); }),
                 "forward-mode columns: 1 hyperparameters over " + std::to_string(comm.size()) + " ranks"));
}
