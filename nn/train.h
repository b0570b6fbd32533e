// Ordinary training and evaluation of a model: the loop pieces, independent of where batches
// come from (tools/ feeds them from gradhpo::data; tests feed them directly).
//
// A training step records loss(w) = cross_entropy(model(w, x), y) on a reused tape, takes the
// gradient in reverse mode and applies the optimizer's fast path in place. Batch-norm running
// statistics are updated in the trainer's ModelState. Evaluation runs the model in eval mode
// (running statistics) in batches with w as a tape constant: values only, no adjoints.
#pragma once

#include <cstdint>
#include <vector>

#include "../engine/tape.h"
#include "models.h"
#include "optim.h"

namespace gradhpo::nn {

/// What one training step saw: the batch's mean loss and how many of its examples the model
/// (before the step) classified correctly.
struct StepResult {
  double loss = 0;
  std::int64_t correct = 0;
};

class Trainer {
 public:
  /// Trains `model` (which must outlive the trainer) from weights w (taken over, updated in
  /// place) and running statistics `state`.
  Trainer(const Model& model, Tensor w, ModelState state, OptimizerConfig optimizer);

  /// One optimizer step on the batch x [B, C, H, W] (any float dtype; converted to w's), labels
  /// int32 [B]. Returns the batch's mean loss and correct count before the step. Throws Error
  /// when the loss or the gradient is not finite ("training diverged at step s: loss is nan
  /// ..."), leaving w and the running statistics as they were before the step.
  StepResult step(const Tensor& x, const Tensor& labels);

  const Tensor& weights() const { return w_; }
  Tensor& weights() { return w_; }
  const ModelState& state() const { return state_; }
  ModelState& state() { return state_; }
  Optimizer& optimizer() { return optimizer_; }
  std::int64_t steps() const { return optimizer_.steps(); }
  const Model& model() const { return model_; }

 private:
  const Model& model_;
  Tensor w_;
  ModelState state_;
  Optimizer optimizer_;
  Tape tape_;
};

struct Evaluation {
  double loss = 0;        ///< mean cross-entropy
  double accuracy = 0;    ///< fraction correct, in [0, 1]
  std::int64_t correct = 0;
  std::int64_t count = 0;
};

/// Loss and accuracy of `model` at w on images [N, C, H, W] (converted to w's dtype batch by
/// batch) with `labels` [N], in eval mode with the running statistics of `state`, `batch_size`
/// images at a time.
Evaluation evaluate(const Model& model, const Tensor& w, const ModelState& state, const Tensor& images,
                    const std::vector<std::int32_t>& labels, std::int64_t batch_size = 1000);

/// The rows [start, start + count) of images as a batch converted to `dtype` (a view when the
/// dtype already matches).
Tensor batch_rows(const Tensor& images, std::int64_t start, std::int64_t count, DType dtype);

}  // namespace gradhpo::nn
