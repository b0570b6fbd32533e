// Online hypergradient methods: the hyperparameters move during one training run, after every
// inner step, from a hypergradient of that step (or of a short, distilled horizon).
//
// The state-based API of the GradHpO slides (optax/jaxopt style): a method keeps everything in a
// BilevelState — weights and optimizer slots, hyperparameters, the outer optimizer's state, the
// step counter, an RNG state, method-specific tensors, per-step metrics — with
//     state = method.init(θ₀);   report = method.step(state);   h = method.hypergradient(state)
// and the state saves to disk and loads back so that a resumed run continues to the same bits.
//
// Methods (one file each): t1t2.h (Luketina et al. 2016, and the DARTS form of its mixed term),
// greedy.h (generalized greedy: γ-weighted one-step terms, top-k subset), hyperdistill.h (Lee et
// al. 2022), hypergradient_descent.h (Baydin et al. 2018).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../method.h"
#include "../outer.h"
#include "../state.h"

namespace gradhpo::hpo {

// BilevelState and its file format: ../state.h.

/// What one online step did.
struct OnlineStep {
  double train_loss = 0;  ///< L_train(w_t) of the step's batch
  double val_loss = 0;    ///< L_val(w_{t+1}) where the method evaluates it (else NaN)
  Tensor hypergradient;   ///< the hypergradient the update used [N]
  /// Flat indices of θ that the projection onto the groups' ranges moved in this step's update
  /// (outer.h: every online update is projected like the outer loop's).
  std::vector<std::int64_t> clipped;
};

class OnlineMethod {
 public:
  /// The problem must outlive the method. The outer optimizer (default: SGD) moves θ.
  OnlineMethod(const BilevelProblem& problem, OuterOptions outer);
  virtual ~OnlineMethod() = default;
  virtual std::string name() const = 0;

  /// S_0, θ₀ (default: the groups' initial values), a fresh outer state, step 0.
  BilevelState init(const Tensor& theta0 = Tensor()) const;
  /// One inner step and one hyperparameter update. Throws InnerDivergence when training
  /// diverges (the state is then left as it was before the step) and Error at the horizon.
  virtual OnlineStep step(BilevelState& state);
  /// The hypergradient the next step would use, without changing the state.
  Tensor hypergradient(const BilevelState& state);
  /// Steps until the horizon (or `steps` more steps when >= 0); returns the last report.
  OnlineStep run(BilevelState& state, std::int64_t steps = -1);
  const BilevelProblem& problem() const { return *problem_; }

  /// The buffers of a run to the horizon, before any work: S_t, S_{t+1} and g_t, the state's
  /// copy that a step replaces it with, the per-step losses (two numbers a step, in the state and
  /// its copy), θ's and the outer optimizer's vectors, and the method's own tensors
  /// (extra_buffers). Work: the training's T gradients (the method's own passes not counted).
  /// init() refuses a run whose buffers exceed the memory available (resources.h).
  Estimate estimate() const;

 protected:
  /// The method's own tensors in BilevelState::extra at their peak: bytes, and what they are.
  virtual std::pair<std::size_t, std::string> extra_buffers() const { return {0, ""}; }
  /// The method's hypergradient for step t, from S_t (`before`), its gradient g_t and S_{t+1}
  /// (`after`), θ being `u.theta()`. May read and write the method's tensors in state.extra.
  virtual Tensor step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                                    const InnerState& after, double& val_loss) = 0;
  /// Applies the update of θ (default: the outer optimizer on the whole hypergradient, θ then
  /// projected onto the groups' ranges). Returns the indices the projection moved.
  virtual std::vector<std::int64_t> apply_update(BilevelState& state, const Tensor& hypergradient);
  /// Throws Error naming the method and the group when the problem has a group it cannot handle.
  void refuse_groups(bool (*allowed)(const HyperGroup&), const char* what) const;
  /// Moves the optimizer state S_t to the problem's device (a state read by load_state is in
  /// host memory; a no-op when it is there already).
  void place_inner(BilevelState& state) const;

  const BilevelProblem* problem_;
  OuterOptions outer_;
};


}  // namespace gradhpo::hpo
