// The inner optimizers' update formulas, once (nn/optim.h explains them): SGD with momentum and
// weight decay, and Adam, in PyTorch's form, as templates over the element type T and each
// hyperparameter's type. They are instantiated three ways:
//   - T = float/double per element, in place, on the CPU (engine/kernels/vector.cpp) and
//     - the same text - in the CUDA kernels (cuda/vector.cu): the fast training path;
//   - T = Var, called once on whole vectors (nn::sgd_step, nn::adam_step): the differentiable
//     step that hpo/ records on a tape.
// nn/optim.h names this namespace nn::formula. Like element.h, this header includes nothing
// but <cmath> and <cstdint>, so .cu files can include it.
#pragma once

#include <cmath>
#include <cstdint>

#include "element.h"  // GRADHPO_HD

namespace gradhpo::kernels::optimizer {

using std::sqrt;  // T = Var finds gradhpo::sqrt by argument-dependent lookup

/// torch.optim.SGD (dampening 0, no Nesterov), one step:
///   d = g + μ w;   v ← β v + d;   w ← w − α v
/// With v₀ = 0 the first step gives v₁ = d, which is PyTorch's "buf = d_p" at step 1.
template <class T, class Lr, class Mom, class Wd>
GRADHPO_HD void sgd(T& w, T& v, const T& g, const Lr& lr, const Mom& momentum, const Wd& weight_decay) {
  v = momentum * v + (g + weight_decay * w);
  w = w - lr * v;
}

/// b^t for t >= 1 by repeated squaring (exact and smooth in b, also at b = 0).
template <class H> GRADHPO_HD H power(const H& b, std::int64_t t) {
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
GRADHPO_HD AdamCorrections<B1, B2> adam_corrections(const B1& beta1, const B2& beta2, std::int64_t t) {
  return {B1(1 - power(beta1, t)), B2(sqrt(1 - power(beta2, t)))};
}

/// √v in Adam's denominator √v̂ + ε: sqrt on numbers. For T = Var, argument-dependent lookup
/// finds gradhpo::adam_sqrt_v (nn/optim.h): the same values, with a derivative of 0 where v = 0.
GRADHPO_HD inline float adam_sqrt_v(float v) { return sqrt(v); }
GRADHPO_HD inline double adam_sqrt_v(double v) { return sqrt(v); }

/// torch.optim.Adam (amsgrad off), one step at step t with corrections for t:
///   L2 form (decoupled = false):      d = g + μ w
///   AdamW   (decoupled = true):       w ← w (1 − α μ),  d = g
///   m ← β₁ m + (1 − β₁) d;   v ← β₂ v + (1 − β₂) d²
///   w ← w − (α / bc1) · m / (√v / √bc2 + ε)
/// Note for T = Var: √v has an infinite derivative where v = 0 exactly (a parameter whose
/// gradient has been exactly zero at every step so far); PyTorch's autograd then returns NaN
/// (∞ · 0). There v is a sum of squares at its minimum, so its own tangent is 0 and the true
/// derivative of the run takes nothing from √ there: adam_sqrt_v's derivative is 0 where v = 0,
/// which gives that exact derivative (nn/optim.h). `eps_inside_sqrt` replaces the denominator
/// √v̂ + ε by √(v̂ + ε²), v̂ = v / bc2: the same size for v̂ ≫ ε², and smooth everywhere (its
/// derivative at v = 0 is 1 / (2 ε bc2)).
template <class T, class Lr, class B1, class B2, class Eps, class Wd>
GRADHPO_HD void adam(T& w, T& m, T& v, const T& g, const Lr& lr, const B1& beta1, const B2& beta2, const Eps& eps,
                     const Wd& weight_decay, bool decoupled, const AdamCorrections<B1, B2>& c,
                     bool eps_inside_sqrt = false) {
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
    w = w - (lr / c.bc1) * (m / (adam_sqrt_v(v) / c.sqrt_bc2 + eps));
  }
}

}  // namespace gradhpo::kernels::optimizer
