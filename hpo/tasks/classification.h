// A bilevel problem over a classifier and labelled data: the usual setting of the papers.
//
//   L_train(w, λ; t) = (1/B) Σ_{i ∈ batch t} λ^weights_i ℓ_i(w)  +  L2 terms   (cross-entropy ℓ)
//   L_val(w)         = mean cross-entropy on the validation set, or on a fixed seeded subset
//
// The batch of step t comes from a seeded shuffle of the training set, epoch after epoch
// (data::BatchIterator, last partial batch dropped), or is the whole training set (full batch).
// Batch norm, where the model has it, runs in training mode (batch statistics) in both losses
// and in evaluate(): the problem is then a pure function of (w, λ), with no running statistics
// that the hypergradient would have to follow.
//
// Loss-defining groups it reads, by kind (whatever their names): every HyperKind::l2 group
// (global, per tensor group, per entry, or on chosen tensors: Hyperparameters::l2_on; ½ Σ λ w²
// each) and one HyperKind::example_weight group (Hyperparameters::example_weights). A group of
// kind HyperKind::loss is refused: nothing here would read it.
#pragma once

#include <functional>
#include <memory>

#include "../../data/dataset.h"
#include "../../nn/models.h"
#include "../../nn/train.h"
#include "../problem.h"

namespace gradhpo::hpo {

struct ClassificationOptions {
  std::int64_t batch_size = 128;  ///< examples per step; 0: full batch (every step sees all of them)
  std::uint64_t batch_seed = 0;   ///< the order of the batches
  std::int64_t val_subset = 0;    ///< 0: the whole validation set; else this many, chosen by val_seed
  std::uint64_t val_seed = 1;
  std::uint64_t init_seed = 0;    ///< w₀ = model.init(init_seed) unless w0 is given
  Tensor w0;                      ///< given initial weights (shape [P]; its dtype is the problem's)
  DType dtype = DType::f32;       ///< with init_seed
  double loss_bound = 1e6;        ///< an inner loss above this is divergence
  /// Where the weights and the data live. Device::cuda puts w₀, the validation set and a full
  /// training batch on the GPU once; a mini-batch is gathered on the host and copied there at
  /// each step. Every method then runs on that device (hyperparameter-sized results come back
  /// on the host).
  Device device = Device::cpu;
  /// Data-parallel training (hpo/mpi/data_parallel.h): this process's training loss covers
  /// shard `shard_rank` of `shard_count` of every batch (hpo/shard.h: contiguous rows), scaled by
  /// its share (shard rows / batch rows) so that the shards' losses add up to the batch's (the
  /// L2 terms included: the shares sum to 1). Batch norm, if the model has it, normalizes
  /// by the shard's own statistics (as PyTorch's DDP without SyncBatchNorm) unless the problem's
  /// sum_batch_statistics is set (mpi::DataParallelOptions::sync_batch_norm). 1: the whole batch.
  int shard_count = 1;
  int shard_rank = 0;
};

struct ClassificationTask {
  BilevelProblem problem;
  std::shared_ptr<const nn::Model> model;
  /// Loss and accuracy of weights w on a dataset (plain mode, batches of 500).
  nn::Evaluation evaluate(const Tensor& w, const data::Dataset& d) const;
};

/// Builds the problem. The datasets are held (shallow copies) by the problem's losses. Throws
/// Error for an empty set, a batch larger than the training set, a horizon < 1, or a
/// hyperparameter group whose size does not fit (example weights for another training-set size,
/// a per-entry group for another parameter count).
ClassificationTask make_classification_task(std::shared_ptr<const nn::Model> model, const data::Dataset& train,
                                            const data::Dataset& val, Hyperparameters hyper,
                                            nn::OptimizerConfig optimizer, std::int64_t horizon,
                                            const ClassificationOptions& options = {});

}  // namespace gradhpo::hpo
