// Forward mode with the K columns of Z spread over MPI ranks (DESIGN.md, "Beyond one machine"):
// every rank replays the same deterministic inner run, carrying its block of θ's columns (of Z,
// of C, and of Adam's moment tangents) through one K/N-direction pass per step; the blocks'
// hypergradient entries are gathered once per hypergradient. A column's numbers do not depend
// on the other columns, so the result equals the single-process forward mode — bit for bit
// where the products' order of additions does not depend on the block's size
// (GRADHPO_GEMM=eigen), and to rounding under the default GEMM planner, which may choose another
// kernel for K/N columns than for K. Even under eigen, a block of ONE column (N = 5 over 4
// ranks) is equal to rounding only: Eigen computes a one-row product with another kernel (its
// coefficient-wise product for small sizes); blocks of two columns or more are bit for bit in
// the tests.
//
// The sharding is a run-time choice of the "forward" method, not a method of its own: the
// problem carries it (BilevelProblem::column_blocks), the registry has one "forward", and a run
// recorded with its columns over N ranks says "forward" and resumes on any number of ranks
// (one process included) with the same numbers.
//
//   mpi::Communicator comm = mpi::Communicator::world();      // or mpi::Communicator(your MPI_Comm)
//   hpo::Hypergradient hg = mpi::forward_hypergradient(comm, problem, theta);   // every rank
//
//   mpi::shard_forward_columns(problem, comm);                 // or: every "forward" run of it
//   hpo::SolveOptions o;  o.method = "forward";                 // is spread over comm
//   hpo::Summary s = hpo::solve(problem, o);                    // every rank; the same θ everywhere
#pragma once

#include <map>
#include <string>

#include "../methods/forward.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// Rank r carries block r of the N columns (hpo/shard.h: contiguous, in rank order); gather
/// sends each block to rank 0, which assembles them in rank order and broadcasts the result.
/// Needs N >= the rank count (each rank at least one column): otherwise block() throws Error
/// saying so.
class RankColumnBlocks final : public hpo::ColumnBlocks {
 public:
  explicit RankColumnBlocks(Communicator comm) : comm_(std::move(comm)) {}
  hpo::Shard block(std::int64_t N) const override;
  void gather(Tensor& d_theta) const override;

 private:
  Communicator comm_;
};

/// Spreads the "forward" method's columns over `comm` for every run of `problem`: sets
/// problem.column_blocks to RankColumnBlocks(comm). Call on every rank.
void shard_forward_columns(hpo::BilevelProblem& problem, const Communicator& comm);

/// The forward-mode hypergradient dL_val/dθ of `problem` at `theta` with θ's columns spread over
/// `comm` (a copy of the problem carries them): every rank calls it with the same problem and θ
/// and gets the whole result, the single-process forward mode's. `options` are forward's as
/// key–value texts (forward_option_specs: clip-hessian, clip-hypergradient, truncate-alternate,
/// single-direction). Throws Error when θ has fewer entries than `comm` has ranks.
hpo::Hypergradient forward_hypergradient(const Communicator& comm, const hpo::BilevelProblem& problem,
                                         const Tensor& theta, const std::map<std::string, std::string>& options = {});

}  // namespace gradhpo::mpi
