#include "t1t2.h"

#include "../methods/one_step.h"

namespace gradhpo::hpo {

T1T2::T1T2(const BilevelProblem& problem, OuterOptions outer, T1T2Options options)
    : OnlineMethod(problem, std::move(outer)), options_(options) {
  require(options_.darts_radius >= 0, "t1t2: the DARTS radius must be >= 0 (0: exact mixed product)");
}

Tensor T1T2::step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                                const InnerState& after, double& val_loss) {
  return detail::one_step_hypergradient(u, before, g, after, state.step, options_.darts_radius, &val_loss);
}

}  // namespace gradhpo::hpo
