#include "greedy.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "../methods/one_step.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

GeneralizedGreedy::GeneralizedGreedy(const BilevelProblem& problem, OuterOptions outer, GreedyOptions options)
    : OnlineMethod(problem, std::move(outer)), options_(options) {
  require(options_.gamma >= 0 && options_.gamma < 1, "greedy: gamma must be in [0, 1), got " + std::to_string(options_.gamma));
  require(options_.top_k >= 0 && options_.top_k <= problem.hyper.size(),
          "greedy: top_k must be in [0, " + std::to_string(problem.hyper.size()) + "], got " + std::to_string(options_.top_k));
}

Tensor GeneralizedGreedy::step_hypergradient(Unroll& u, BilevelState& state, const InnerState& before, const Tensor& g,
                                             const InnerState& after, double& val_loss) {
  const Tensor term = detail::one_step_hypergradient(u, before, g, after, state.step, options_.darts_radius, &val_loss)
                          .to(Device::cpu)
                          .to(DType::f64);  // θ-sized: on the host
  Tensor& h = state.extra["accumulated"];  // h_t = γ h_{t−1} + term
  if (!h.defined()) h = Tensor::zeros(term.shape(), DType::f64);
  Tensor next = term.clone();
  axpy(next, options_.gamma, h);
  h = next;
  return next;
}

std::vector<std::int64_t> top_k_indices(const Tensor& x, std::int64_t k) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(x.numel()));
  std::iota(idx.begin(), idx.end(), 0);
  const std::vector<double> v = x.to_vector();
  std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) {
    return std::abs(v[static_cast<std::size_t>(a)]) > std::abs(v[static_cast<std::size_t>(b)]);
  });
  idx.resize(static_cast<std::size_t>(std::min<std::int64_t>(k, x.numel())));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<std::int64_t> GeneralizedGreedy::apply_update(BilevelState& state, const Tensor& hypergradient) {
  if (options_.top_k == 0 || options_.top_k >= hypergradient.numel()) return OnlineMethod::apply_update(state, hypergradient);
  const Tensor before = state.theta.clone();
  const std::vector<std::int64_t> projected = OnlineMethod::apply_update(state, hypergradient);
  // 1_{S_t}: entries outside the top k go back to their old values (in range: they were).
  const std::vector<std::int64_t> keep = top_k_indices(hypergradient, options_.top_k);
  Tensor theta = before.clone();
  for (std::int64_t i : keep) theta.flat_slice(i, 1).fill(state.theta.at(i));
  state.theta = theta;
  std::vector<std::int64_t> clipped;  // the projected entries that were kept
  std::set_intersection(projected.begin(), projected.end(), keep.begin(), keep.end(), std::back_inserter(clipped));
  return clipped;
}

}  // namespace gradhpo::hpo
