// One optimizer step out of place, S_{t+1} = Φ(S_t, g, λ), in a single pass over the parameters
// (SGD with momentum, Adam):
// the formula of optim_element.h on numbers, with each hyperparameter a [1] or [P] tensor (a
// value per parameter: learned per-block learning rates, say). What hpo/'s plain step runs where
// it would otherwise record Φ op by op on a tape in plain mode — six passes over P for SGD with
// momentum and weight decay, each allocating its result.
//
// Same bits as the tape: the source is compiled without floating-point contraction
// (engine/CMakeLists.txt), so every operation rounds once, as each recorded op does, in the
// formula's order. hpo's tests compare the two bit for bit.
#pragma once

#include "../tensor.h"

namespace gradhpo::kernels {

/// torch.optim.SGD's step (optimizer::sgd) from (w, v, g) into (w_out, v_out), allocated here:
/// w, v, g of one numel and dtype on the CPU; lr, momentum and weight_decay each of that dtype
/// with numel 1 or w's.
void sgd_step_into(const Tensor& w, const Tensor& v, const Tensor& g, const Tensor& lr, const Tensor& momentum,
                   const Tensor& weight_decay, Tensor& w_out, Tensor& v_out);

/// Whether sgd_step_into takes these operands (else the caller records the step on a tape).
bool sgd_step_applies(const Tensor& w, const Tensor& lr, const Tensor& momentum, const Tensor& weight_decay);

/// torch.optim.Adam's step number `step` (≥ 1, its bias corrections' t; optimizer::adam) from
/// (w, m, v, g) into (w_out, m_out, v_out), allocated here; the hyperparameters as for SGD.
struct AdamStepHyper {
  Tensor lr, beta1, beta2, eps, weight_decay;
  bool decoupled = false, eps_inside_sqrt = false;
};
void adam_step_into(const Tensor& w, const Tensor& m, const Tensor& v, const Tensor& g, const AdamStepHyper& h,
                    std::int64_t step, Tensor& w_out, Tensor& m_out, Tensor& v_out);
bool adam_step_applies(const Tensor& w, const AdamStepHyper& h);

}  // namespace gradhpo::kernels
