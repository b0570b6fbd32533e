// Plain reference implementations of the approximate methods' definitions, written for clarity
// rather than speed (dense algebra, explicit loops) and registered beside each method: the
// registry-wide test (tests/hpo/test_registry.cpp) checks every approximation against its own
// reference to 1e-10. Each one trains the whole run from S_0 and returns dL_val/dθ's
// approximation [N] in float64 on the host. Small problems only (the IFT's builds a dense P × P
// Hessian with the engine's hessian()).
#pragma once

#include "../options.h"
#include "../problem.h"

namespace gradhpo::hpo::reference {

/// IFT at w_T (Lorraine et al. 2020, Theorem 1): H = ∇²_w L_train(w_T; batch T−1) + μI dense by the
/// engine's hessian() (not the Unroll the method uses); b = ∇_w L_val(w_T); q from the option's
/// solver written on the dense matrix — exact: the minimum-norm solution (complete orthogonal
/// decomposition); neumann: α Σ_{j≤k} (I − αH)^j b by matrix powers; cg: Hestenes–Stiefel on
/// the dense H with the same stopping rule; then ∂_θ L_val − ∂_θ(q · ∇_w L_train) by the engine's
/// mixed_vjp.
Tensor ift(const BilevelProblem& problem, const Tensor& theta, const Options& options);

/// DrMAD (Fu et al. 2016, Algorithm 1): store-all reverse mode (reverse_along) along the states
/// (1 − t/T) S_0 + (t/T) S_T, interpolated entry by entry, with g_t recomputed at each.
Tensor drmad(const BilevelProblem& problem, const Tensor& theta, const Options& options);

/// Σ_t weight(t) h_t, each one-step term h_t the exact hypergradient of the single step t with S_t
/// held fixed — reverse mode over that one step (reverse_along) — and, for darts-radius r > 0,
/// its mixed product replaced by DARTS' central difference (Liu et al. 2019, Eq. 8).
/// greedy: weight(t) = γ^{T−1−t}; t1t2: weight(T−1) = 1, 0 elsewhere.
Tensor greedy(const BilevelProblem& problem, const Tensor& theta, const Options& options);
Tensor t1t2(const BilevelProblem& problem, const Tensor& theta, const Options& options);

}  // namespace gradhpo::hpo::reference
