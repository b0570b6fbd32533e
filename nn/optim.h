// Inner optimizers: SGD with momentum and weight decay, and Adam, in PyTorch's form.
//
// The update formulas are written ONCE, in namespace `formula` (engine/kernels/optim_element.h),
// as templates over the element type T and each hyperparameter's type. They are instantiated twice:
//   - T = float/double, called per element in place by the engine's update kernels
//     (kernels::sgd_update, kernels::adam_update: the CPU loop, or the CUDA kernel when w is on
//     the GPU): the fast path (Sgd, Adam, Optimizer) for ordinary training;
//   - T = Var, called once on whole vectors: the differentiable step (sgd_step, adam_step), so
//     that w_{t+1} = Φ(w_t, v_t, λ, g_t) is recorded on a tape with the hyperparameters (and
//     the state and the gradient) as tape variables. The tape then gives ∂Φ/∂w, ∂Φ/∂λ, ∂Φ/∂g
//     in reverse mode, and their products with tangents in forward mode (Request::tangents),
//     which is what reverse- and forward-mode hypergradients through training need.
// Scalar operations that both T support (+, −, ·, /, sqrt) are all the formulas use, so one
// text serves both; a hyperparameter may be a scalar or, on the Var path, a per-parameter vector.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "../engine/kernels/optim_element.h"
#include "../engine/ops.h"
#include "schedule.h"

namespace gradhpo {

/// Adam's √v on a tape, as formula::adam computes it (found there by argument-dependent lookup):
/// the value of sqrt(v) bit for bit, with a derivative of 0 (not ∞) where v = 0 exactly, in
/// every mode (tangent, adjoint, forward-over-reverse). v is a decayed sum of squared
/// gradients, so where it is exactly 0 it sits at its minimum and its own tangent is 0 (a
/// parameter whose gradient has been exactly 0 at every step): √'s derivative times that zero
/// tangent contributes 0 to the true derivative of the run, which central differences confirm;
/// ∞ · 0 would be NaN (PyTorch's autograd returns NaN there). Where v > 0 the derivative is
/// 1 / (2√v), the same bits as sqrt's.
Var adam_sqrt_v(const Var& v);

}  // namespace gradhpo

namespace gradhpo::nn {

/// The formulas themselves (sgd, adam, adam_corrections, power) live beside the engine's other
/// element math, in engine/kernels/optim_element.h, so that the CUDA update kernels compile the
/// same text; nn::formula is their name here.
namespace formula = kernels::optimizer;

// ---- fast path: plain tensors, in place -------------------------------------------------------

struct SgdHyper {
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  ///< AdamW's decoupled weight decay instead of the L2 form
  bool eps_inside_sqrt = false;  ///< √(v̂ + ε²) instead of √v̂ + ε (see formula::adam)
};

/// SGD with its state, updating a float32 or float64 w in place.
class Sgd {
 public:
  /// One step of formula::sgd. The velocity starts at zero (allocated at the first step).
  /// When `decay_mask` is defined (shaped like w), parameter i decays by μ · mask_i.
  void step(Tensor& w, const Tensor& g, const SgdHyper& h);
  Tensor velocity;
  Tensor decay_mask;
};

/// Adam with its state, updating w in place.
class Adam {
 public:
  /// One step of formula::adam (step count t = steps() + 1).
  void step(Tensor& w, const Tensor& g, const AdamHyper& h);
  std::int64_t steps() const { return t; }
  Tensor m, v;
  std::int64_t t = 0;
  Tensor decay_mask;  ///< as in Sgd
};

// ---- differentiable step: Vars on a tape ------------------------------------------------------

/// Hyperparameters as tape Vars: each one element, or (lr, momentum, weight_decay) as many as w.
struct SgdVars {
  Var lr, momentum, weight_decay;
};
struct SgdVarState {
  Var w, v;
};
/// (w, v) -> (w', v') by formula::sgd, recorded on w's tape.
SgdVarState sgd_step(const SgdVarState& s, const Var& g, const SgdVars& h);

struct AdamVars {
  Var lr, beta1, beta2, eps, weight_decay;
  bool decoupled = false;
  bool eps_inside_sqrt = false;  ///< see formula::adam
};
struct AdamVarState {
  Var w, m, v;
  std::int64_t t = 0;  ///< steps taken so far; the step computes step t + 1
};
/// (w, m, v, t) -> (w', m', v', t + 1) by formula::adam, recorded on w's tape.
AdamVarState adam_step(const AdamVarState& s, const Var& g, const AdamVars& h);

/// The hyperparameters as constant leaves of `tape` (not differentiated), one element each.
SgdVars constant_vars(Tape& tape, const SgdHyper& h, DType dtype);
AdamVars constant_vars(Tape& tape, const AdamHyper& h, DType dtype);

// ---- one optimizer for a training loop --------------------------------------------------------

enum class OptimizerKind : std::uint8_t { sgd, adam };
/// "sgd" or "adam"; throws Error otherwise.
OptimizerKind parse_optimizer(const std::string& name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  Schedule lr = Schedule::constant(0.01);  ///< evaluated at the step index (0-based)
  double momentum = 0.0;                   ///< SGD
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  ///< Adam
  bool decoupled = false;                         ///< Adam: AdamW's weight decay
  bool eps_inside_sqrt = false;                   ///< Adam: √(v̂ + ε²) instead of √v̂ + ε
  /// Throws Error naming the offending option (NaN/inf, negative, β outside [0, 1)).
  void validate() const;
  std::string describe() const;
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerConfig config);
  /// One step with the learning rate of the schedule at steps(); then steps() grows by one.
  void step(Tensor& w, const Tensor& g);
  std::int64_t steps() const { return steps_; }
  double lr() const { return config_.lr.at(steps_); }
  const OptimizerConfig& config() const { return config_; }
  /// Weight decay only where the mask (shaped like w) is 1, e.g. layout.mask({weight}).
  void set_decay_mask(const Tensor& mask);

 private:
  OptimizerConfig config_;
  Sgd sgd_;
  Adam adam_;
  std::int64_t steps_ = 0;
};

}  // namespace gradhpo::nn
