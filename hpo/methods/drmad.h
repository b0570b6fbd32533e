// DrMAD (Fu, Luo, Liu, Yan & Chua 2016, "DrMAD: Distilling Reverse-Mode Automatic
// Differentiation for Optimizing Hyperparameters of Deep Neural Networks", Section 3,
// Algorithm 1; HippoTrainer slides, "Linear Trajectory Approximation").
//
// Reverse mode needs S_t for every t of the backward pass. DrMAD keeps only the two ends and
// walks back along the straight line between them,
//     w(β) = (1 − β) w_0 + β w_T,   β = t / T,
// (the optimizer's other state — SGD's velocity, Adam's moments — on the same line between its
// values at 0 and T), recomputing g_t = ∇L_train at the interpolated weights and running the
// exact backward step (backward.h) there. Memory O(P), one extra gradient per step; exact where
// the trajectory really is a straight line, an approximation of dL_val/dθ = ∂_θ L_val +
// ∂_w L_val · dw_T/dθ's second term elsewhere. Both kinds of hyperparameters.
#pragma once

#include "../method.h"

namespace gradhpo::hpo {

/// Registered as "drmad" (no options). d_w0 = dL_val/dw_start along the line.
class DrmadMethod final : public Method {
 public:
  explicit DrmadMethod(const Options& options);
  Estimate estimate(const BilevelProblem& problem) const override;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;
};

/// (1 − β) a + β b, part by part: the state on DrMAD's line at β.
InnerState drmad_on_line(const InnerState& a, const InnerState& b, double beta);

}  // namespace gradhpo::hpo
