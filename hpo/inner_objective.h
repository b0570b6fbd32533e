// The inner objective whose optimum the implicit methods (implicit.h, hoag.h) differentiate:
//
//     h(w, λ) = (1/|S|) Σ_{t ∈ S} L_train(w, λ; batch t)  +  (μ/2)‖w‖²
//
// at fixed raw hyperparameters θ (those of the Unroll it is built on). S is the set of steps
// whose training losses are averaged (InnerObjective::Batches):
//   last step    S = {T − 1}: the batch training ended on (Lorraine et al. 2020 evaluate the
//                Hessian on the current training batch)
//   steps        S given: one step of a full-batch problem (every step is then the full
//                training set), or the steps of one epoch of a mini-batch problem (their mean is
//                the full-batch loss when the batches cover the training set), or any fixed set
// μ is the inner optimizer's fixed weight decay: SGD's v ← βv + g + μw (and Adam's coupled
// form) has its fixed point where ∇L_train + μw = 0, so that is the stationarity condition the
// implicit function theorem applies to. AdamW's decoupled decay has no such potential; it is
// refused. Every product below is one pass per step of S, counted in the Unroll's PassCounts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unroll.h"

namespace gradhpo::hpo {

struct InnerBatches {
  /// Empty: the last inner step's batch (T − 1). Otherwise these steps' losses, averaged.
  std::vector<std::int64_t> steps;
  /// "the last step's batch (t = 59)", "the batch of step 0", "the mean of the batches of 3 steps (0, ..., 2)".
  std::string describe(std::int64_t horizon) const;
};

/// Throws Error when `method` cannot learn a group of `hyper`: the implicit methods
/// differentiate an optimum of the training loss, which an optimizer-defining hyperparameter
/// (learning rate, momentum, weight decay) does not move. The message names group and method.
void require_loss_defining(const Hyperparameters& hyper, const std::string& method);

class InnerObjective {
 public:
  /// Checks the steps (inside [0, T)) and the optimizer (no decoupled weight decay).
  InnerObjective(Unroll& unroll, const InnerBatches& batches, const std::string& method);

  struct Value {
    double value = 0;  ///< h(w)
    Tensor grad;       ///< ∇_w h  [P]
  };
  /// h and ∇_w h: |S| reverse passes.
  Value value_and_gradient(const Tensor& w);

  struct Products {
    Tensor hvp;    ///< ∇²_w h · v  [P]
    Tensor mixed;  ///< ∂_θ (v · ∇_w h)  [N] (undefined unless asked for)
  };
  /// The Hessian-vector product, and with `with_mixed` the mixed product of the same direction:
  /// |S| forward-over-reverse passes (Unroll::loss_pass), whichever is asked.
  Products products(const Tensor& w, const Tensor& v, bool with_mixed);

  const std::vector<std::int64_t>& steps() const { return steps_; }
  double weight_decay() const { return mu_; }
  Unroll& unroll() { return *u_; }

 private:
  Unroll* u_;
  std::vector<std::int64_t> steps_;
  double mu_ = 0;
};

}  // namespace gradhpo::hpo
