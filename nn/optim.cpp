#include "optim.h"

#include <sstream>

#include "../engine/kernels/math.h"
#include "../engine/kernels/vector.h"

namespace gradhpo {

Var adam_sqrt_v(const Var& v) {
  if (v.is_plain()) return sqrt(v);  // values only: nothing to guard
  // keep = [v > 0] and its complement are data (no tangent, no adjoint). √(v + [v = 0]) · [v > 0]
  // is √v where v > 0 (v + 0 and · 1 are exact, so value and derivative keep sqrt's bits) and
  // √1 · 0 = 0 where v = 0, with derivative (1/2) · 0 = 0 there. A NaN v stays NaN.
  const Tensor keep = kernels::unary_derivative(kernels::UnaryOp::relu, v.value(), v.value(), 1);
  return sqrt(v + kernels::affine(keep, -1.0, 1.0)) * keep;
}

}  // namespace gradhpo

namespace gradhpo::nn {
namespace {

void check_step_args(const char* who, const Tensor& w, const Tensor& g) {
  require(w.defined() && g.defined(), std::string(who) + ": undefined weights or gradient");
  require(w.numel() == g.numel(), std::string(who) + ": gradient of " + std::to_string(g.numel()) +
                                      " elements for weights of " + std::to_string(w.numel()));
  require(w.dtype() == g.dtype(), std::string(who) + ": weights are " + dtype_name(w.dtype()) + ", gradient " +
                                      dtype_name(g.dtype()));
}

// Makes `state` a zero tensor shaped like w, on w's device, unless it already is one of w's
// size, dtype and device.
void ensure_state(Tensor& state, const Tensor& w) {
  if (!state.defined() || state.numel() != w.numel() || state.dtype() != w.dtype() || state.device() != w.device())
    state = Tensor::zeros(w.shape(), w.dtype(), w.device());
}

void check_mask(const char* who, const Tensor& mask, const Tensor& w) {
  if (!mask.defined()) return;
  require(mask.numel() == w.numel() && mask.dtype() == w.dtype(),
          std::string(who) + ": weight-decay mask of " + std::to_string(mask.numel()) + " " + dtype_name(mask.dtype()) +
              " elements for weights of " + std::to_string(w.numel()) + " " + dtype_name(w.dtype()));
}

}  // namespace

void Sgd::step(Tensor& w, const Tensor& g, const SgdHyper& h) {
  check_step_args("Sgd::step", w, g);
  check_mask("Sgd::step", decay_mask, w);
  ensure_state(velocity, w);
  kernels::sgd_update(w, velocity, g, decay_mask, {h.lr, h.momentum, h.weight_decay});
}

void Adam::step(Tensor& w, const Tensor& g, const AdamHyper& h) {
  check_step_args("Adam::step", w, g);
  check_mask("Adam::step", decay_mask, w);
  ensure_state(m, w);
  ensure_state(v, w);
  ++t;
  // Corrections in double (PyTorch computes 1 − β^t in Python floats), then the element type.
  const auto c64 = formula::adam_corrections(h.beta1, h.beta2, t);
  kernels::AdamUpdate u;
  u.lr = h.lr;
  u.beta1 = h.beta1;
  u.beta2 = h.beta2;
  u.eps = h.eps;
  u.weight_decay = h.weight_decay;
  u.decoupled = h.decoupled;
  u.eps_inside_sqrt = h.eps_inside_sqrt;
  u.bc1 = c64.bc1;
  u.sqrt_bc2 = c64.sqrt_bc2;
  kernels::adam_update(w, m, v, g, decay_mask, u);
}

SgdVarState sgd_step(const SgdVarState& s, const Var& g, const SgdVars& h) {
  require(s.w.numel() == g.numel() && s.v.numel() == g.numel(),
          "sgd_step: w, v and g must have the same size, got " + std::to_string(s.w.numel()) + ", " +
              std::to_string(s.v.numel()) + " and " + std::to_string(g.numel()));
  SgdVarState out = s;
  formula::sgd(out.w, out.v, g, h.lr, h.momentum, h.weight_decay);
  return out;
}

AdamVarState adam_step(const AdamVarState& s, const Var& g, const AdamVars& h) {
  require(s.w.numel() == g.numel() && s.m.numel() == g.numel() && s.v.numel() == g.numel(),
          "adam_step: w, m, v and g must have the same size");
  AdamVarState out = s;
  out.t = s.t + 1;
  const auto c = formula::adam_corrections(h.beta1, h.beta2, out.t);
  formula::adam(out.w, out.m, out.v, g, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled, c, h.eps_inside_sqrt);
  return out;
}

SgdVars constant_vars(Tape& tape, const SgdHyper& h, DType dtype) {
  return {tape.constant(Tensor::scalar(h.lr, dtype)), tape.constant(Tensor::scalar(h.momentum, dtype)),
          tape.constant(Tensor::scalar(h.weight_decay, dtype))};
}

AdamVars constant_vars(Tape& tape, const AdamHyper& h, DType dtype) {
  AdamVars v{tape.constant(Tensor::scalar(h.lr, dtype)), tape.constant(Tensor::scalar(h.beta1, dtype)),
             tape.constant(Tensor::scalar(h.beta2, dtype)), tape.constant(Tensor::scalar(h.eps, dtype)),
             tape.constant(Tensor::scalar(h.weight_decay, dtype)), h.decoupled, h.eps_inside_sqrt};
  return v;
}

// ---- Optimizer ------------------------------------------------------------------------------------

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  throw Error("unknown optimizer '" + name + "' (expected sgd or adam)");
}

void OptimizerConfig::validate() const {
  lr.validate("learning rate");
  auto finite_nonneg = [](double v, const std::string& what) {
    require(std::isfinite(v), what + " is " + std::to_string(v) + " (must be a finite number)");
    require(v >= 0, what + " is " + std::to_string(v) + " (must be >= 0)");
  };
  finite_nonneg(weight_decay, "weight decay");
  if (kind == OptimizerKind::sgd) {
    finite_nonneg(momentum, "momentum");
  } else {
    finite_nonneg(beta1, "beta1");
    finite_nonneg(beta2, "beta2");
    finite_nonneg(eps, "eps");
    require(beta1 < 1 && beta2 < 1, "Adam betas must be in [0, 1), got " + std::to_string(beta1) + " and " +
                                        std::to_string(beta2));
  }
}

std::string OptimizerConfig::describe() const {
  std::ostringstream o;
  o << std::defaultfloat;
  if (kind == OptimizerKind::sgd) {
    o << "sgd lr " << lr.describe() << ", momentum " << momentum << ", weight decay " << weight_decay;
  } else {
    o << (decoupled ? "adamw" : "adam") << " lr " << lr.describe() << ", betas (" << beta1 << ", " << beta2
      << "), eps " << eps << ", weight decay " << weight_decay;
  }
  return o.str();
}

Optimizer::Optimizer(OptimizerConfig config) : config_(std::move(config)) { config_.validate(); }

void Optimizer::set_decay_mask(const Tensor& mask) {
  sgd_.decay_mask = mask;
  adam_.decay_mask = mask;
}

void Optimizer::step(Tensor& w, const Tensor& g) {
  const double lr_now = config_.lr.at(steps_);
  if (config_.kind == OptimizerKind::sgd) {
    sgd_.step(w, g, SgdHyper{lr_now, config_.momentum, config_.weight_decay});
  } else {
    adam_.step(w, g, AdamHyper{lr_now, config_.beta1, config_.beta2, config_.eps, config_.weight_decay,
                               config_.decoupled, config_.eps_inside_sqrt});
  }
  ++steps_;
}

}  // namespace gradhpo::nn
