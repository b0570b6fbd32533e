// The bilevel problem (DESIGN.md, "The problem it solves"):
//
//     θ* = argmin_θ  L_val(w_T(θ), λ(θ))   where  w_{t+1} = Φ(w_t, λ_t(θ), ∇_w L_train(w_t, λ(θ); batch_t))
//
// A BilevelProblem is a description, shared by every method: the training loss at each step,
// the validation objective, the hyperparameter groups, the inner optimizer (SGD with momentum
// and weight decay, or Adam/AdamW, in PyTorch's form) with the values of the optimizer
// hyperparameters that are not being learned, the horizon T and the initial weights.
//
// Embedders bring their own models: the two losses are any callables on Vars. A loss picks its
// own batch from the step index (our classification problems in classification.h do that from a
// seeded batch order), so full-batch training is a loss that ignores the step.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../nn/optim.h"
#include "hyperparams.h"

namespace gradhpo::hpo {

/// L_train(w, λ; batch of step t). Must be deterministic in (w, λ, t).
using TrainLoss = std::function<Var(const Var& w, const HyperValues& h, std::int64_t step)>;
/// L_val(w, λ). Usually independent of λ (then its direct term ∂_θ L_val is zero).
using ValLoss = std::function<Var(const Var& w, const HyperValues& h)>;

class ColumnBlocks;  // methods/forward.h

struct BilevelProblem {
  TrainLoss train_loss;
  ValLoss val_loss;
  /// Every loss-defining group (L2, example weights, a user's value) must reach a loss: a loss
  /// reads it through HyperValues, by name, kind or index. One that neither loss reads at any
  /// step would get a hypergradient of exactly zero; the methods refuse it, naming it
  /// (Unroll::check_reads). Plain training (run_inner) does not check.
  Hyperparameters hyper;
  /// The inner optimizer's kind and every optimizer hyperparameter that `hyper` does not learn
  /// (a learned group replaces the config's value: "lr" replaces the schedule, "momentum" SGD's
  /// β or Adam's β₁, "weight_decay" μ).
  nn::OptimizerConfig optimizer;
  /// T: inner steps of one training run.
  std::int64_t horizon = 0;
  /// w₀, float32 or float64; the dtype of every computation.
  Tensor w0;
  /// The model's layout, needed only by hyperparameter groups spread per parameter tensor.
  const nn::ParamLayout* layout = nullptr;
  /// An inner loss above this counts as divergence (NaN and inf always do).
  double loss_bound = std::numeric_limits<double>::infinity();
  /// Data-parallel training (hpo/mpi/data_parallel.h). When set, train_loss is this process's
  /// shard of each step's batch (shard.h), scaled so that the shards' losses add up to the
  /// batch's, and Unroll hands this callable everything it derives from the training loss — the
  /// loss, ∇_w L, ∂_θ L and the forward-over-reverse products (H·v, H·Z, the mixed products) —
  /// to be summed over the shards in place, in a fixed order and identically on every process,
  /// before any method sees them. Each is linear in the loss, so the sums are the whole batch's
  /// derivatives up to the order of additions, and every process takes the same step. Unset: one
  /// process holds the whole batch.
  std::function<void(const std::vector<Tensor*>& parts)> sum_over_shards;
  /// Synchronized batch norm for data-parallel training (hpo/mpi/data_parallel.h, like
  /// PyTorch's SyncBatchNorm): when set, Unroll hands it to the training loss's tapes
  /// (Tape::shard_sum), so batch norm in training mode normalizes with the whole batch's mean and
  /// variance — every shard's channel sums summed in a fixed order — and takes the sums of its
  /// derivative rules over the whole batch too. Every process must then record the same ops.
  /// Unset: each process's batch statistics are its shard's (PyTorch's DDP without
  /// SyncBatchNorm). The validation loss is never sharded and never synchronized.
  Tape::ShardSum sum_batch_statistics;
  /// Forward mode over blocks of θ's columns, one block per process (hpo/mpi/forward_columns.h):
  /// when set, the "forward" method carries only this process's block of the columns of Z and
  /// gathers the blocks' hypergradient entries at the end. The result is forward mode's, so a
  /// run may be made or resumed with or without it. Other methods ignore it. Unset: every column.
  std::shared_ptr<const ColumnBlocks> column_blocks;
  /// What the validation objective is, for reports (e.g. "mean cross-entropy on 3000 held-out
  /// training images, batch norm in training mode").
  std::string description;

  std::int64_t num_params() const { return w0.numel(); }
  DType dtype() const { return w0.dtype(); }
  /// Throws Error naming the first field that is missing or out of range.
  void validate() const;
};

/// An inner run that went wrong: the loss or the weights became NaN/inf, or the loss exceeded
/// the problem's bound. `step` is the inner step; the outer loop adds its own context.
class InnerDivergence : public Error {
 public:
  /// `value`: what failed — the loss, or the entry that became NaN or inf (NaN when unknown).
  InnerDivergence(const std::string& what, std::int64_t step, double value = std::numeric_limits<double>::quiet_NaN())
      : Error(what), step_(step), value_(value) {}
  std::int64_t step() const { return step_; }
  double value() const { return value_; }

 private:
  std::int64_t step_;
  double value_;
};

}  // namespace gradhpo::hpo
