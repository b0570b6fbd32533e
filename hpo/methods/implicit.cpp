#include "implicit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include <Eigen/Dense>

#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

namespace {

using Clock = std::chrono::steady_clock;

double norm(const Tensor& x) { return std::sqrt(dot(x, x)); }

/// The solver's own buffers: Neumann v, p, Hv; CG q, r, p, Hp, the next p; exact the dense H and
/// e_i, H e_i, q (float64).
std::size_t solver_bytes(ImplicitSolver solver, std::int64_t P) {
  const std::size_t n = static_cast<std::size_t>(P) * sizeof(double);
  switch (solver) {
    case ImplicitSolver::neumann: return 3 * n;
    case ImplicitSolver::cg: return 5 * n;
    case ImplicitSolver::exact: return static_cast<std::size_t>(P) * n + 3 * n;
  }
  return 0;
}

Tensor scaled(double a, const Tensor& x) {
  Tensor y = Tensor::zeros(x.shape(), x.dtype(), x.device());
  axpy(y, a, x);
  return y;
}

}  // namespace

LinearSolve neumann_solve(const LinearOperator& H, const Tensor& b, double alpha, int terms) {
  require(terms >= 0, "Neumann series: k = " + std::to_string(terms) + " terms asked; give k >= 0");
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
  out.stop_reason = terms == 0 ? "k = 0: the identity approximation H^-1 = alpha I (one term)"
                               : "summed " + std::to_string(terms + 1) + " terms";
  return out;
}

LinearSolve exact_solve(const LinearOperator& H, const Tensor& b) {
  const std::int64_t P = b.numel();
  require(P <= kExactSolveMaxParams, "IFT (exact): the dense Hessian of P = " + std::to_string(P) + " parameters would take " +
                                         std::to_string(P * P * 8 / 1000000) + " MB; the exact solve takes P <= " +
                                         std::to_string(kExactSolveMaxParams) + " (use solver=cg or solver=neumann)");
  // H column by column: H e_i (P products), on the host in float64.
  const Tensor rhs = b.to(DType::f64);
  Eigen::MatrixXd dense(P, P);
  LinearSolve out;
  for (std::int64_t i = 0; i < P; ++i) {
    Tensor e = Tensor::zeros(rhs.shape(), DType::f64, rhs.device());
    e.flat_slice(i, 1).fill(1.0);
    const std::vector<double> column = H(e).to_vector();
    for (std::int64_t j = 0; j < P; ++j) dense(j, i) = column[static_cast<std::size_t>(j)];
    ++out.operator_calls;
  }
  // The minimum-norm least-squares solution H⁺ b (H⁻¹ b where H is invertible).
  const std::vector<double> bv = rhs.to_vector();
  const Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(dense);
  const Eigen::VectorXd q = cod.solve(Eigen::Map<const Eigen::VectorXd>(bv.data(), P));
  out.q = Tensor::from(std::vector<double>(q.data(), q.data() + P), rhs.shape(), DType::f64).to(rhs.device());
  out.converged = true;
  out.stop_reason = cod.rank() == P ? "dense solve (H of full rank " + std::to_string(P) + ")"
                                    : "minimum-norm solution (H is singular: rank " + std::to_string(cod.rank()) + " of " +
                                          std::to_string(P) + ")";
  out.residual = (dense * q - Eigen::Map<const Eigen::VectorXd>(bv.data(), P)).norm();
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

const char* solver_name(ImplicitSolver s) {
  switch (s) {
    case ImplicitSolver::neumann: return "Neumann";
    case ImplicitSolver::cg: return "CG";
    case ImplicitSolver::exact: return "exact";
  }
  return "?";
}

ImplicitSolver parse_solver(const std::string& name) {
  if (name == "neumann") return ImplicitSolver::neumann;
  if (name == "cg") return ImplicitSolver::cg;
  if (name == "exact") return ImplicitSolver::exact;
  throw Error("IFT: unknown solver '" + name + "' (expected cg, neumann or exact)");
}

void ImplicitOptions::validate() const {
  if (solver == ImplicitSolver::cg)
    require(iterations >= 1, "IFT (CG): a budget of zero iterations; give iterations >= 1, got " + std::to_string(iterations));
  if (solver == ImplicitSolver::neumann)
    require(iterations >= 0, "IFT (Neumann): a budget of zero is k = 0; give iterations >= 0, got " +
                                 std::to_string(iterations));
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
  } else if (options.solver == ImplicitSolver::exact) {
    out.solve = exact_solve(H, b);
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
  } else if (options.solver == ImplicitSolver::exact) {
    name << method << " (exact solve, P = " << w.numel() << ")";
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
  hg.cost.peak_bytes = solver_bytes(options.solver, w.numel());
  return out;
}

const OptionSpecs& ift_option_specs() {
  constexpr double inf = std::numeric_limits<double>::max();
  static const OptionSpecs specs = {
      OptionSpec::choice("solver", "cg", {"cg", "neumann", "exact"},
                         "the solve H q = grad_w L_val: conjugate gradients, the Neumann series (Lorraine et al. 2020, "
                         "Algorithm 3), or the dense minimum-norm solve (P <= 4096)"),
      OptionSpec::integer("iterations", 50, 0, 1000000000,
                          "CG: the most iterations (>= 1); Neumann: k, the terms after the first (0: H^-1 = alpha I)"),
      OptionSpec::real("neumann-alpha", 0.1, 0, inf, "Neumann: alpha of the series (needs 0 < alpha < 2/lambda_max(H))"),
      OptionSpec::real("cg-tolerance", 1e-10, 0, inf, "CG: stop at |Hq - grad_w L_val| <= tolerance * |grad_w L_val| (0: all iterations)"),
  };
  return specs;
}

namespace {

Options options_of(const ImplicitOptions& o) {
  Options out(ift_option_specs(), "ift");
  const char* solvers[] = {"neumann", "cg", "exact"};
  out.set("solver", std::string(solvers[static_cast<int>(o.solver)]));
  out.set("iterations", static_cast<std::int64_t>(std::max(o.iterations, 0)));
  if (std::isfinite(o.neumann_alpha) && o.neumann_alpha >= 0) out.set("neumann-alpha", o.neumann_alpha);
  if (std::isfinite(o.cg_tolerance) && o.cg_tolerance >= 0) out.set("cg-tolerance", o.cg_tolerance);
  return out;
}

}  // namespace

ImplicitMethod::ImplicitMethod(const Options& options) : Method("ift", options, Support::loss_defining_only()) {
  o_.solver = parse_solver(options.text("solver"));
  o_.iterations = static_cast<int>(options.integer("iterations"));
  o_.neumann_alpha = options.real("neumann-alpha");
  o_.cg_tolerance = options.real("cg-tolerance");
  o_.validate();  // a budget of zero or α = 0: refused when the method is made
}

ImplicitMethod::ImplicitMethod(const ImplicitOptions& options)
    : Method("ift", (options.validate(), options_of(options)), Support::loss_defining_only()), o_(options) {}

void ImplicitMethod::check_problem(const BilevelProblem& problem) const {
  if (o_.solver == ImplicitSolver::exact && problem.num_params() > kExactSolveMaxParams)
    throw Error("ift: the exact solve builds a dense Hessian of P^2 numbers and takes P <= " +
                std::to_string(kExactSolveMaxParams) + "; this problem has P = " + std::to_string(problem.num_params()) +
                " (use solver=cg or solver=neumann)");
}

Estimate ImplicitMethod::estimate(const BilevelProblem& p) const {
  const std::int64_t P = p.num_params();
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  Estimate e;
  e.buffer_bytes = solver_bytes(o_.solver, P) + parts * static_cast<std::size_t>(P) * dtype_size(p.dtype());
  const double products = o_.solver == ImplicitSolver::exact ? static_cast<double>(P) : static_cast<double>(o_.iterations);
  const double batches = o_.hessian_batches.steps.empty() ? 1.0 : static_cast<double>(o_.hessian_batches.steps.size());
  // Training, L_val, the solve's H·x products and the final mixed product, one pass per batch.
  e.gradient_equivalents = static_cast<double>(p.horizon) + 1 + 4 * batches * (products + 1);
  e.explain = std::string("the ") + solver_name(o_.solver) + " solver's float64 buffers and the final state S_T";
  return e;
}

ImplicitResult ImplicitMethod::at(const BilevelProblem& problem, const Tensor& theta, const Tensor& w) const {
  check_supports(problem);
  Unroll u(problem, theta);
  ImplicitOptions at_w = o_;
  if (at_w.hessian_batches.steps.empty()) at_w.hessian_batches.steps = {problem.horizon - 1};
  return implicit_at(u, w, at_w);
}

MethodOutput ImplicitMethod::run(Unroll& u, const Segment& seg) const {
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
  ImplicitOptions at_end = o_;
  if (at_end.hessian_batches.steps.empty()) at_end.hessian_batches.steps = {seg.first + seg.steps - 1};
  ImplicitResult r = implicit_at(u, s.w(), at_end);
  Hypergradient& hg = r.hypergradient;
  MethodOutput out;
  out.label = std::move(hg.method);
  out.val_loss = hg.val_loss;
  out.final_train_loss = last_loss;
  out.d_theta = std::move(hg.d_theta);
  out.direct = std::move(hg.direct);
  out.cost = hg.cost;
  out.cost.peak_bytes += s.nbytes();
  out.notes = std::move(hg.notes);
  out.final_state = std::move(s);
  return out;
}

}  // namespace gradhpo::hpo
