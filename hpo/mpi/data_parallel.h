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
//
// Batch norm: by default each rank normalizes with its shard's statistics (PyTorch's DDP
// without SyncBatchNorm), which is not the single-process run when the model has batch norm.
// With DataParallelOptions::sync_batch_norm the statistics are the whole batch's (the ranks'
// channel sums summed in rank order, BilevelProblem::sum_batch_statistics), and so are the sums
// of batch norm's derivative rules — reverse, tangents, forward-over-reverse — so a model with
// batch norm trains as in one process, to rounding (tests/mpi/test_data_parallel.cpp). It costs
// two messages of C + 1 and C doubles per batch-norm layer in the forward pass and one of 2C
// (gradient), 2KC (tangents) or (2 + 4K)C (K-direction forward-over-reverse) per rule.
// Synchronized statistics run on the CPU only.
#pragma once

#include "../problem.h"
#include "communicator.h"

namespace gradhpo::mpi {

struct DataParallelOptions {
  /// Batch norm with the whole batch's statistics (synchronized over the ranks) instead of each
  /// shard's.
  bool sync_batch_norm = false;
};

/// Makes `problem` data-parallel over `comm`: sets problem.sum_over_shards to a rank-ordered
/// sum of every part over `comm`, and with options.sync_batch_norm problem.sum_batch_statistics
/// to a rank-ordered sum of batch norm's channel sums. The problem's train_loss must be this
/// rank's shard of each batch, scaled so that the shards' losses add up to the batch's
/// (ClassificationOptions' shard_count / shard_rank do that for our classification problems).
void train_data_parallel(hpo::BilevelProblem& problem, const Communicator& comm,
                         const DataParallelOptions& options = {});

}  // namespace gradhpo::mpi
