// Forward mode with the columns of Z spread over the ranks (a run-time choice of "forward":
// BilevelProblem::column_blocks): the single-process forward hypergradient — bit for bit under
// GRADHPO_GEMM=eigen (ctest runs the suite so at every rank count), to 1e-13 relative under the
// default GEMM planner — the same bits on every rank, directly, through the embedder's
// mpi::forward_hypergradient and through hpo::solve, whose state resumes with or without the
// columns spread.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <gradhpo/hpo/mpi/forward_columns.h>
#include <gradhpo/hpo/registry.h>
#include <gradhpo/hpo/solve.h>
#include <gradhpo/hpo/state.h>

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

/// Whether the spread run is checked bit for bit: one rank, or GRADHPO_GEMM=eigen with blocks
/// of at least two columns. A block of one column (N = 5 over 4 ranks) is checked to rounding
/// only: Eigen itself computes a product with one row by another kernel (a coefficient-wise
/// lazy product below its size threshold), whose additions may round otherwise.
bool bitwise(const Communicator& comm, std::int64_t N) {
  return comm.size() == 1 || (gemm_is_eigen() && N >= 2 * comm.size());
}

Communicator registered() {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  return comm;
}

/// The same problem with its forward-mode columns spread over `comm`.
hpo::BilevelProblem sharded(hpo::BilevelProblem p, const Communicator& comm) {
  mpi::shard_forward_columns(p, comm);
  return p;
}

void check_same_as_forward(const ToySpec& spec) {
  const Communicator comm = registered();
  const hpo::ClassificationTask task = toy_task(spec);
  const Tensor theta = task.problem.hyper.initial();
  const hpo::Hypergradient one = run_method("forward", task.problem, theta);
  const hpo::Hypergradient many = run_method("forward", sharded(task.problem, comm), theta);
  INFO(comm.size() << " ranks, N = " << theta.numel());
  CHECK(rel(many.d_theta, one.d_theta) <= 1e-13);
  if (bitwise(comm, theta.numel())) CHECK(bits_of(many.d_theta) == bits_of(one.d_theta));
  for (const std::string& b : comm.gather(bits_of(many.d_theta))) CHECK(b == bits_of(many.d_theta));
  CHECK(many.cost.directions == hpo::shard_of(theta.numel(), comm.rank(), comm.size()).size());
  // The embedder's one call: the same bits.
  const hpo::Hypergradient embedded = mpi::forward_hypergradient(comm, task.problem, theta);
  CHECK(bits_of(embedded.d_theta) == bits_of(many.d_theta));
  CHECK(embedded.cost.directions == many.cost.directions);
}

}  // namespace

TEST_CASE("forward columns: one registry entry, \"forward\"") {
  registered();
  for (const std::string& name : hpo::Registry::global().names(hpo::MethodKind::offline)) CHECK(name != "forward-columns");
}

TEST_CASE("forward columns: SGD with every kind of group, and Adam") {
  ToySpec spec;  // lr blocks, momentum, weight decay, per-tensor L2, example weights
  spec.horizon = 20;
  check_same_as_forward(spec);
  spec.optimizer = nn::OptimizerKind::adam;
  check_same_as_forward(spec);
  ToySpec few = schedule_spec();  // N = 5: blocks of one column at 4 ranks (checked to rounding)
  few.horizon = 20;
  check_same_as_forward(few);
}

TEST_CASE("forward columns through hpo::solve: the same outer steps on every rank") {
  const Communicator comm = registered();
  ToySpec spec = schedule_spec();
  spec.horizon = 20;
  spec.lr_blocks = 8;  // N = 9: blocks of two columns or more at 4 ranks
  const hpo::ClassificationTask task = toy_task(spec);
  hpo::SolveOptions o;
  o.outer.kind = hpo::OuterKind::sign;
  o.outer.step = {0.01, 0.05};
  o.outer.max_steps = 3;
  o.method = "forward";
  const hpo::Summary one = hpo::solve(task.problem, o);
  const hpo::Summary many = hpo::solve(sharded(task.problem, comm), o);
  REQUIRE(many.rows.size() == one.rows.size());
  for (std::size_t i = 0; i < one.rows.size(); ++i) {
    const std::vector<double>& a = many.rows[i].hypergradient;
    const std::vector<double>& b = one.rows[i].hypergradient;
    CHECK(fd::rel_error(a, b) <= 1e-13);
    if (bitwise(comm, task.problem.hyper.size())) CHECK(bits_of(a) == bits_of(b));
  }
  for (const std::string& b : comm.gather(bits_of(many.theta))) CHECK(b == bits_of(many.theta));
}

// A run's state records "forward" whether or not its columns were spread, so a run saved with
// them resumes without them (one process's work) and the other way round, to the bits of the
// run that was never interrupted (under GRADHPO_GEMM=eigen).
TEST_CASE("forward columns: a run resumes with or without its columns spread") {
  const Communicator comm = registered();
  ToySpec spec = schedule_spec();
  spec.horizon = 12;
  spec.lr_blocks = 8;
  const hpo::ClassificationTask task = toy_task(spec);
  const hpo::BilevelProblem spread = sharded(task.problem, comm);
  hpo::SolveOptions o;
  o.outer.kind = hpo::OuterKind::sign;
  o.outer.step = {0.01, 0.05};
  o.outer.max_steps = 4;
  o.method = "forward";
  const hpo::Summary whole = hpo::solve(task.problem, o);
  for (const bool first_spread : {true, false}) {
    INFO((first_spread ? "spread, then one process" : "one process, then spread"));
    hpo::SolveOptions first = o;
    first.outer.max_steps = 2;
    std::string saved;
    first.save = [&saved](const hpo::SolveState& st) { saved = hpo::solve_state_bytes(st); };
    hpo::solve(first_spread ? spread : task.problem, first);
    REQUIRE(!saved.empty());
    const hpo::SolveState state = hpo::solve_state_from_bytes(saved, "the saved state");
    hpo::SolveOptions second = o;
    second.resume = &state;
    const hpo::Summary resumed = hpo::solve(first_spread ? task.problem : spread, second);
    REQUIRE(resumed.rows.size() == whole.rows.size());
    if (bitwise(comm, task.problem.hyper.size())) {
      CHECK(bits_of(resumed.theta) == bits_of(whole.theta));
      for (std::size_t i = 0; i < whole.rows.size(); ++i)
        CHECK(bits_of(resumed.rows[i].hypergradient) == bits_of(whole.rows[i].hypergradient));
    } else {
      CHECK(rel(resumed.theta, whole.theta) <= 1e-12);
    }
  }
}

TEST_CASE("forward columns: fewer columns than ranks is refused on every rank") {
  const Communicator comm = registered();
  if (comm.size() == 1) return;
  ToySpec spec = schedule_spec();
  spec.lr_blocks = 1;
  spec.learn_momentum = false;  // N = 1
  spec.horizon = 4;
  const hpo::ClassificationTask task = toy_task(spec);
  CHECK(contains(error_of([&] { run_method("forward", sharded(task.problem, comm), task.problem.hyper.initial()); }),
                 "forward-mode columns: 1 hyperparameters over " + std::to_string(comm.size()) + " ranks"));
}
