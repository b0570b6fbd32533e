// Forward mode with the K columns of Z spread over MPI ranks (DESIGN.md, "Beyond one machine"):
// every rank replays the same deterministic inner run, carrying its block of θ's columns (of Z,
// of C, and of Adam's moment tangents) through one K/N-direction pass per step; the blocks'
// hypergradient entries are gathered once per hypergradient. A column's numbers do not depend
// on the other columns, so the result equals the single-process forward mode — bit for bit
// where the products' order of additions does not depend on the block's size
// (GRADHPO_GEMM=eigen), and to rounding under the default GEMM planner, which may choose another
// kernel for K/N columns than for K.
//
//   mpi::register_distributed_methods(comm);                  // adds "forward-columns"
//   hpo::SolveOptions o;  o.method = "forward-columns";         // its options are forward's
//   hpo::Summary s = hpo::solve(problem, o);                    // every rank; the same θ everywhere
#pragma once

#include <memory>

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

/// Registers the distributed methods in Registry::global(): "forward-columns" (forward mode,
/// its options, the columns spread over `comm`). Call on every rank, after
/// hpo::register_builtin_methods(); registering twice replaces the communicator.
void register_distributed_methods(const Communicator& comm);

}  // namespace gradhpo::mpi
