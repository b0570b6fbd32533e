// The one-step hypergradients, offline: T1–T2 (Luketina, Berglund, Greff & Raiko 2016, Eq. 4;
// DARTS' finite-difference form, Liu, Simonyan & Yang 2019, Eq. 7–8) and generalized greedy's
// γ-weighted sum of one-step terms along the run (HippoTrainer's "Generalized Greedy Gradient-
// Based Hyperparameter Optimization"). The online forms, which move θ after every step, are in
// online/ (t1t2.h, greedy.h); both use the same one-step term, detail::one_step_hypergradient below:
//
//     h_t = ∂_θ L_val(w_{t+1}) + ∂Φ_t/∂θ^T v + ∂_θ(ḡ · ∇_w L_train(w_t)),
//     v = ∇_w L_val(w_{t+1}),  ḡ = ∂Φ_t/∂g^T (v, 0, ...)
//
// the exact derivative of L_val(w_{t+1}) through step t alone, S_t held fixed. With darts-radius
// r > 0 the mixed product ∂_θ(ḡ · ∇_w L_train) is DARTS' central difference in weight space,
// [∇_θ L_train(w + εḡ) − ∇_θ L_train(w − εḡ)] / 2ε with ε = r / ‖ḡ‖.
//
//   t1t2    h_{T−1}: the one-step hypergradient of the segment's last step, after training to it
//   greedy  Σ_t γ^{T−1−t} h_t over the segment (h ← γ h + h_t step by step)
//
// Approximations of dL_val/dθ with definitions of their own: the registry checks them against
// plain references written from these formulas (register.cpp).
#pragma once

#include "../method.h"

namespace gradhpo::hpo {

/// Registry entry "t1t2": darts-radius.
const OptionSpecs& t1t2_option_specs();
/// Registry entry "greedy": gamma, darts-radius.
const OptionSpecs& greedy_option_specs();

/// Registered as "t1t2". Every hyperparameter group, SGD and Adam.
class T1t2Method final : public Method {
 public:
  explicit T1t2Method(const Options& options);
  Estimate estimate(const BilevelProblem& problem) const override;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;

 private:
  double darts_radius_ = 0;
};

/// Registered as "greedy". Every hyperparameter group, SGD and Adam.
class GreedyMethod final : public Method {
 public:
  explicit GreedyMethod(const Options& options);
  Estimate estimate(const BilevelProblem& problem) const override;

 protected:
  MethodOutput run(Unroll& u, const Segment& segment) const override;

 private:
  double gamma_ = 0.9, darts_radius_ = 0;
};

namespace detail {
/// The exact one-step hypergradient of T1–T2: d L_val(w_{t+1}) / dθ through step t alone,
///     ∂_θ L_val(w_{t+1}) + ∂Φ_t/∂θ^T v + ∂_θ(ḡ · ∇_w L_train(w_t)),  v = ∇_w L_val(w_{t+1}),
///     ḡ = ∂Φ_t/∂g^T (v, 0, ...).
/// `darts_radius` > 0 replaces the last (mixed) term by the DARTS central difference
///     [∇_θ L_train(w_t + ε ḡ) − ∇_θ L_train(w_t − ε ḡ)] / 2ε,   ε = darts_radius / ‖ḡ‖.
Tensor one_step_hypergradient(Unroll& u, const InnerState& before, const Tensor& g, const InnerState& after,
                              std::int64_t t, double darts_radius, double* val_loss = nullptr);
/// The same without the direct term, for a given v = ∇_w L_val: ∂Φ_t/∂θ^T v + ∂_θ(ḡ·∇_w L_train(w_t)),
/// with Φ_t taken at `before` (HyperDistill evaluates it at its averaged weights).
Tensor one_step_indirect(Unroll& u, const InnerState& before, const Tensor& g, const Tensor& v, std::int64_t t,
                         double darts_radius);
}  // namespace detail

}  // namespace gradhpo::hpo
