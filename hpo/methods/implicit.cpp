#include "implicit.h"

#include <chrono>
#include <cmath>
#include <sstream>

#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

namespace {

using Clock = std::chrono::steady_clock;

double norm(const Tensor& x) { return std::sqrt(dot(x, x)); }

Tensor scaled(double a, const Tensor& x) {
  Tensor y = Tensor::zeros(x.shape(), x.dtype(), x.device());
  axpy(y, a, x);
  return y;
}

}  // namespace

LinearSolve neumann_solve(const LinearOperator& H, const Tensor& b, double alpha, int terms) {
  require(terms >= 1, "Neumann series: k = " + std::to_string(terms) +
                          " terms asked; give k >= 1 (k = 0 is the identity approximation H^-1 = alpha I of T1-T2)");
  require(std::isfinite(alpha) && alpha > 0, "Neumann series: alpha must be > 0, got " + std::to_string(alpha));
  // Algorithm 3 (Lorraine et al. 2020): v_j = (I − αH)^j b and p = Σ_{j=0}^{k} v_j.
  Tensor v = b.to(DType::f64).clone();
  Tensor p = v.clone();
  LinearSolve out;
  for (int j = 1; j <= terms; ++j) {
    axpy(v, -alpha, H(v));
    ++out.operator_calls;
    axpy(p, 1.0, v);
  }
  out.q = scaled(alpha, p);  // α scales the whole sum once
  out.iterations = terms;
  out.converged = true;
  out.stop_reason = "summed " + std::to_string(terms + 1) + " terms";
  return out;
}

LinearSolve cg_solve(const LinearOperator& H, const Tensor& b, const CgOptions& options, const Tensor& q0) {
  require(options.max_iterations >= 1,
          "conjugate gradients: max_iterations = " + std::to_string(options.max_iterations) + "; give at least 1");
  require(std::isfinite(options.tolerance) && options.tolerance >= 0,
          "conjugate gradients: the tolerance must be >= 0, got " + std::to_string(options.tolerance));
  LinearSolve out;
  const Tensor rhs = b.to(DType::f64);
  out.q = q0.defined() ? q0.to(DType::f64).to(rhs.device()).clone().reshape(rhs.shape())
                       : Tensor::zeros(rhs.shape(), DType::f64, rhs.device());
  require(out.q.numel() == rhs.numel(), "conjugate gradients: the warm start has " + std::to_string(out.q.numel()) +
                                            " entries for a system of " + std::to_string(rhs.numel()));
  Tensor r = rhs.clone();  // r = b − H q₀
  if (q0.defined()) {
    axpy(r, -1.0, H(out.q));
    ++out.operator_calls;
  }
  Tensor p = r.clone();
  double rr = dot(r, r);
  out.stop_reason = "max iterations (" + std::to_string(options.max_iterations) + ")";
  if (std::sqrt(rr) <= options.tolerance) {
    out.converged = true;
    out.stop_reason = "the start already meets the tolerance";
  }
  while (!out.converged && out.iterations < options.max_iterations) {
    const Tensor Hp = H(p);
    ++out.operator_calls;
    const double curvature = dot(p, Hp);
    if (!(curvature > 0)) {  // H is not positive definite along p: CG's step is undefined
      std::ostringstream m;
      m << "non-positive curvature p'Hp = " << curvature << " at iteration " << out.iterations
        << " (the Hessian is not positive definite)";
      out.stop_reason = m.str();
      break;
    }
    const double a = rr / curvature;
    axpy(out.q, a, p);
    axpy(r, -a, Hp);
    ++out.iterations;
    const double rr_next = dot(r, r);
    if (std::sqrt(rr_next) <= options.tolerance) {
      out.converged = true;
      out.stop_reason = "tolerance reached";
    }
    Tensor p_next = r.clone();  // p ← r + (r'r / r₋'r₋) p
    axpy(p_next, rr_next / rr, p);
    p = std::move(p_next);
    rr = rr_next;
  }
  out.residual = std::sqrt(rr);
  return out;
}

const char* solver_name(ImplicitSolver s) { return s == ImplicitSolver::neumann ? "Neumann" : "CG"; }

void ImplicitOptions::validate() const {
  require(iterations >= 1, std::string("IFT (") + solver_name(solver) + "): a budget of zero iterations; give " +
                               "iterations >= 1, got " + std::to_string(iterations));
  require(std::isfinite(neumann_alpha) && neumann_alpha > 0,
          "IFT: neumann_alpha must be > 0, got " + std::to_string(neumann_alpha));
  require(std::isfinite(cg_tolerance) && cg_tolerance >= 0,
          "IFT: cg_tolerance must be >= 0, got " + std::to_string(cg_tolerance));
  require(std::isfinite(cg_reference_norm) && cg_reference_norm >= 0,
          "IFT: cg_reference_norm must be >= 0, got " + std::to_string(cg_reference_norm));
}

ImplicitResult implicit_at(Unroll& unroll, const Tensor& w, const ImplicitOptions& options, const std::string& method) {
  const auto start = Clock::now();
  const BilevelProblem& p = unroll.problem();
  require_loss_defining(p.hyper, method);
  options.validate();
  InnerObjective h(unroll, options.hessian_batches, method);

  // Direct term ∂_θ L_val, and ∇_w L_val: the right-hand side of H q = ∇_w L_val.
  const Unroll::ValPass val = unroll.validation(w);
  const Tensor b = val.grad_w.to(DType::f64);
  const LinearOperator H = [&](const Tensor& x) { return h.products(w, x, false).hvp.to(DType::f64); };

  // q ≈ H⁻¹ ∇_w L_val (so that ∂_w L_val · dw*/dλ = −q · ∂²h/∂w∂λ).
  ImplicitResult out;
  if (options.solver == ImplicitSolver::neumann) {
    out.solve = neumann_solve(H, b, options.neumann_alpha, options.iterations);
  } else {
    CgOptions cg;
    cg.tolerance = options.cg_tolerance * (options.cg_reference_norm > 0 ? options.cg_reference_norm : norm(b));
    cg.max_iterations = options.iterations;
    out.solve = cg_solve(H, b, cg, options.warm_start);
  }

  // Indirect term −∂_θ(q · ∇_w h): one forward-over-reverse pass per batch, which also gives
  // H q, and with it the true residual of the solve.
  const InnerObjective::Products final_pass = h.products(w, out.solve.q, true);
  Tensor residual = final_pass.hvp.to(DType::f64);
  axpy(residual, -1.0, b);

  Hypergradient& hg = out.hypergradient;
  std::ostringstream name;
  if (options.solver == ImplicitSolver::neumann) {
    name << method << " (Neumann, k = " << options.iterations << ", alpha = " << options.neumann_alpha << ")";
  } else {
    name << method << " (CG, " << out.solve.iterations << " iterations)";
  }
  hg.method = name.str();
  hg.val_loss = val.loss;
  // θ-sized results on the host (where the caller's θ is); q and the solver's vectors on w's device.
  hg.theta = unroll.theta_on_host();
  hg.direct = val.grad_theta.to(Device::cpu);
  hg.d_theta = hg.direct.clone();  // dL_val/dθ = ∂_θ L_val − ∂_θ(q · ∇_w h)
  axpy(hg.d_theta, -1.0, final_pass.mixed.to(Device::cpu).to(hg.d_theta.dtype()));
  std::ostringstream solve_note;
  solve_note << "solve: " << out.solve.stop_reason << "; |Hq - grad_w L_val| = " << norm(residual) << " (|grad_w L_val| = "
             << norm(b) << ")";
  hg.notes.push_back(solve_note.str());
  hg.notes.push_back("Hessian of the training loss: " + options.hessian_batches.describe(p.horizon));
  if (h.weight_decay() != 0)
    hg.notes.push_back("the optimizer's weight decay mu = " + std::to_string(h.weight_decay()) +
                       " is part of the inner objective (H + mu I)");
  out.residual = norm(residual);
  out.rhs_norm = norm(b);

  hg.cost.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  detail::record_counts(hg.cost, unroll.counts);
  hg.cost.directions = 1;
  // The solver's own vectors: Neumann v, p, Hv; CG q, r, p, Hp, the next p (float64, [P] each).
  const std::size_t vectors = options.solver == ImplicitSolver::neumann ? 3 : 5;
  hg.cost.peak_bytes = vectors * static_cast<std::size_t>(w.numel()) * sizeof(double);
  return out;
}

Hypergradient ift_hypergradient(const BilevelProblem& problem, const Tensor& theta, const ImplicitOptions& options,
                                const Segment* segment) {
  const auto start = Clock::now();
  require_loss_defining(problem.hyper, "IFT");  // before training, so that a refusal costs nothing
  options.validate();
  problem.hyper.check_theta(theta, "IFT");
  Unroll u(problem, theta);
  const Segment seg = detail::resolve(u, segment);

  // w_T: training as the problem says (the IFT is exact only where this reached the optimum).
  InnerState s = seg.start;
  double last_loss = 0;
  report_progress("train", 0, seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    last_loss = lp.loss;
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("train", k + 1, seg.steps);
  }
  ImplicitOptions at_end = options;
  if (at_end.hessian_batches.steps.empty()) at_end.hessian_batches.steps = {seg.first + seg.steps - 1};
  ImplicitResult r = implicit_at(u, s.w(), at_end);
  Hypergradient hg = std::move(r.hypergradient);
  hg.final_train_loss = last_loss;
  hg.final_state = std::move(s);
  hg.cost.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  hg.cost.peak_bytes += hg.final_state.nbytes();
  return hg;
}

}  // namespace gradhpo::hpo
