// Inner optimizers: SGD with momentum and weight decay, and Adam, in PyTorch's form.
//
// The update formulas are written ONCE, in namespace `formula`, as templates over the element
// type T and each hyperparameter's type. They are instantiated twice:
//   - T = float/double, called per element in a loop, in place: the fast path (Sgd, Adam,
//     Optimizer) for ordinary training;
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

#include "../engine/ops.h"
#include "schedule.h"

namespace gradhpo::nn {

namespace formula {

using std::sqrt;  // T = Var finds gradhpo::sqrt by argument-dependent lookup

/// torch.optim.SGD (dampening 0, no Nesterov), one step:
///   d = g + μ w;   v ← β v + d;   w ← w − α v
/// With v₀ = 0 the first step gives v₁ = d, which is PyTorch's "buf = d_p" at step 1.
template <class T, class Lr, class Mom, class Wd>
void sgd(T& w, T& v, const T& g, const Lr& lr, const Mom& momentum, const Wd& weight_decay) {
  v = momentum * v + (g + weight_decay * w);
  w = w - lr * v;
}

/// b^t for t >= 1 by repeated squaring (exact and smooth in b, also at b = 0).
template <class H> H power(const H& b, std::int64_t t) {
  H base = b, acc = b;
  bool have = false;
  while (true) {
    if (t & 1) {
      acc = have ? acc * base : base;
      have = true;
    }
    t >>= 1;
    if (!t) break;
    base = base * base;
  }
  return acc;
}

/// torch.optim.Adam's bias corrections at step t >= 1: bc1 = 1 − β₁^t and √bc2 = √(1 − β₂^t).
template <class B1, class B2> struct AdamCorrections {
  B1 bc1;
  B2 sqrt_bc2;
};
template <class B1, class B2>
AdamCorrections<B1, B2> adam_corrections(const B1& beta1, const B2& beta2, std::int64_t t) {
  return {B1(1 - power(beta1, t)), B2(sqrt(1 - power(beta2, t)))};
}

/// torch.optim.Adam (amsgrad off), one step at step t with corrections for t:
///   L2 form (decoupled = false):      d = g + μ w
///   AdamW   (decoupled = true):       w ← w (1 − α μ),  d = g
///   m ← β₁ m + (1 − β₁) d;   v ← β₂ v + (1 − β₂) d²
///   w ← w − (α / bc1) · m / (√v / √bc2 + ε)
/// Note for T = Var: √v has an infinite derivative where v = 0 exactly (a parameter whose
/// gradient has been exactly zero at every step so far), so tangents and second-order
/// adjoints through such an element are not finite; PyTorch's double backward has the same
/// property. `eps_inside_sqrt` replaces the denominator √v̂ + ε by √(v̂ + ε²), v̂ = v / bc2:
/// the same size for v̂ ≫ ε², and differentiable everywhere (its derivative at v = 0 is
/// 1 / (2 ε bc2)), which is what hpo/ uses to differentiate through Adam without NaN.
template <class T, class Lr, class B1, class B2, class Eps, class Wd>
void adam(T& w, T& m, T& v, const T& g, const Lr& lr, const B1& beta1, const B2& beta2, const Eps& eps,
          const Wd& weight_decay, bool decoupled, const AdamCorrections<B1, B2>& c, bool eps_inside_sqrt = false) {
  T d = g;
  if (decoupled) {
    w = w * (1 - lr * weight_decay);
  } else {
    d = g + weight_decay * w;
  }
  m = beta1 * m + (1 - beta1) * d;
  v = beta2 * v + (1 - beta2) * (d * d);
  if (eps_inside_sqrt) {
    w = w - (lr / c.bc1) * (m / sqrt(v / (c.sqrt_bc2 * c.sqrt_bc2) + eps * eps));
  } else {
    w = w - (lr / c.bc1) * (m / (sqrt(v) / c.sqrt_bc2 + eps));
  }
}

}  // namespace formula

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
