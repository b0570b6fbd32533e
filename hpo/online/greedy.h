// Generalized greedy gradient-based HPO (GradHpO slides, "Generalized Greedy Gradient-Based
// HPO"): the one-step terms of T1–T2 summed with a forgetting factor γ,
//     h_t = γ h_{t−1} + dL_val(w_{t+1})/dλ |_{through step t}      (= Σ_s γ^{t−s} (one-step term)_s)
// (γ → 0 is T1–T2; γ → 1 sums every step's greedy term), and the subset rule
//     λ_{t+1} = λ_t − η 1_{S_t} ⊙ h_t,   S_t = the top-k entries of |h_t|
// (k = 0: every entry). Entries outside S_t keep their value even under a stateful outer optimizer.
#pragma once

#include "online.h"

namespace gradhpo::hpo {

struct GreedyOptions {
  double gamma = 0.9;     ///< forgetting factor in [0, 1)
  std::int64_t top_k = 0; ///< update only the k largest |h_t| entries each step (0: all)
  double darts_radius = 0;
};

class GeneralizedGreedy final : public OnlineMethod {
 public:
  GeneralizedGreedy(const BilevelProblem& problem, OuterOptions outer, GreedyOptions options = {});
  std::string name() const override { return "online-greedy"; }  // the registry name

 protected:
  Tensor step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                            const InnerState& after, double& val_loss) override;
  std::vector<std::int64_t> apply_update(BilevelState& state, const Tensor& hypergradient) override;
  std::pair<std::size_t, std::string> extra_buffers() const override {
    return {static_cast<std::size_t>(problem_->hyper.size()) * sizeof(double), "the accumulated h_t (N numbers)"};
  }

 private:
  GreedyOptions options_;
};

/// The indices of the k entries of largest magnitude (ties: the lower index first), ascending.
std::vector<std::int64_t> top_k_indices(const Tensor& x, std::int64_t k);

}  // namespace gradhpo::hpo
