// Data-parallel inner training over MPI (DESIGN.md, "Beyond one machine"): every rank holds a
// shard of every batch (hpo/shard.h) and computes its shard's loss; what Unroll derives from the
// training loss — the loss, gradients, forward-over-reverse products, ∂_θ terms — is summed
// over the ranks in rank order (Communicator::sum_in_rank_order) before any method uses it, so
// every rank takes the same step with the same bits, and every method that works through Unroll
// (reverse mode under every memory policy, forward mode, the implicit and one-step methods) is
// data-parallel with no code of its own.
//
//   mpi::Communicator comm = mpi::Communicator::world();
//   ClassificationOptions o;  o.shard_count = comm.size();  o.shard_rank = comm.rank();
//   ClassificationTask task = make_classification_task(..., o);      // or a loss of your own
//   mpi::train_data_parallel(task.problem, comm);                    // over your shard of each batch
//   Hypergradient hg = method->compute(task.problem, theta);         // the same on every rank
//
// Equal to the single-process run up to the order of additions (≤ 1e-12 relative in float64):
// one process sums a batch's examples in one order, N ranks sum their shards and then the
// shards. Bit for bit reproducible for a given rank count. Exact reversal needs every rank to
// hold identical fixed-point states, which follows from identical inputs at every step (the
// tests check the hypergradients' bits across ranks). Runs on the CPU: the sums go through host
// memory; on GPUs, in a build with NCCL, the device parts go through NCCL (nccl_sums.h).
#pragma once

#include "../problem.h"
#include "communicator.h"

namespace gradhpo::mpi {

/// Makes `problem` data-parallel over `comm`: sets problem.sum_over_shards to a rank-ordered
/// sum of every part over `comm`. The problem's train_loss must be this rank's shard of each
/// batch, scaled so that the shards' losses add up to the batch's (ClassificationOptions'
/// shard_count / shard_rank do that for our classification problems).
void train_data_parallel(hpo::BilevelProblem& problem, const Communicator& comm);

}  // namespace gradhpo::mpi
