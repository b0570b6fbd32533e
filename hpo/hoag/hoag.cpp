#include "hoag.h"

#include <lbfgs.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <exception>
#include <iomanip>
#include <sstream>

#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

const char* decrease_name(ToleranceDecrease d) {
  switch (d) {
    case ToleranceDecrease::exponential: return "exponential";
    case ToleranceDecrease::quadratic: return "quadratic";
    case ToleranceDecrease::cubic: return "cubic";
  }
  return "?";
}

ToleranceDecrease parse_decrease(const std::string& name) {
  for (ToleranceDecrease d : {ToleranceDecrease::exponential, ToleranceDecrease::quadratic, ToleranceDecrease::cubic})
    if (name == decrease_name(d)) return d;
  throw Error("unknown tolerance decrease '" + name + "' (expected exponential, quadratic or cubic)");
}

void HoagOptions::validate() const {
  auto positive = [](double x) { return std::isfinite(x) && x > 0; };
  require(max_iterations >= 1, "HOAG: a budget of zero outer iterations; give max_iterations >= 1, got " +
                                   std::to_string(max_iterations));
  require(max_inner_iterations >= 1 && max_cg_iterations >= 1,
          "HOAG: max_inner_iterations and max_cg_iterations must be >= 1");
  require(lbfgs_memory >= 1, "HOAG: lbfgs_memory must be >= 1");
  require(positive(tolerance_init) && positive(tolerance_floor),
          "HOAG: tolerance_init and tolerance_floor must be > 0");
  require(positive(exponential_rate) && exponential_rate < 1, "HOAG: exponential_rate must be in (0, 1)");
  require(std::isfinite(initial_step) && initial_step >= 0, "HOAG: initial_step must be >= 0 (0: automatic)");
  require(!std::isnan(theta_min) && !std::isnan(theta_max) && theta_min < theta_max,
          "HOAG: the box [theta_min, theta_max] is empty");
}

double hoag_tolerance(const HoagOptions& o, int k) {
  const double kk = static_cast<double>(k);
  double eps = 0;
  switch (o.decrease) {
    case ToleranceDecrease::exponential: eps = o.tolerance_init * std::pow(o.exponential_rate, kk); break;
    case ToleranceDecrease::quadratic: eps = o.tolerance_init / (kk * kk); break;
    case ToleranceDecrease::cubic: eps = o.tolerance_init / (kk * kk * kk); break;
  }
  return std::max(eps, o.tolerance_floor);
}

namespace {

using Clock = std::chrono::steady_clock;

double norm(const Tensor& x) { return std::sqrt(dot(x, x)); }

// The most passes one more L-BFGS iteration can make (its line search's evaluations, plus
// one), and the passes of a hypergradient besides CG's products (∇_w L_val and ∂_θ L_val, the
// mixed product, and the warm start's residual).
constexpr std::int64_t kLineSearchPasses = 41, kHypergradientPasses = 4;

// --- step (i): the inner problem by libLBFGS ---------------------------------------------------

struct InnerSolve {
  Tensor w;
  double value = 0, grad_norm = 0;
  int iterations = 0;
  std::string status;
};

/// What libLBFGS's C callbacks see. Exceptions must not cross the C frames: the evaluation
/// catches them, keeps the first, and makes the line search back off (+inf); run_lbfgs rethrows.
struct LbfgsContext {
  InnerObjective* h = nullptr;
  Shape shape;
  DType dtype = DType::f64;
  Device device = Device::cpu;  ///< w's: libLBFGS's x and g are host arrays, copied each evaluation
  double tolerance = 0;
  int iterations = 0;
  double grad_norm = 0;
  std::function<bool()> out_of_passes;  ///< true: stop before another iteration (its line search)
  std::exception_ptr error;
};

Tensor weights_from(const lbfgsfloatval_t* x, const LbfgsContext& c) {
  std::vector<double> v(x, x + c.shape.numel());
  return Tensor::from(v, c.shape, c.dtype).to(c.device);
}

lbfgsfloatval_t evaluate(void* instance, const lbfgsfloatval_t* x, lbfgsfloatval_t* g, const int n,
                         const lbfgsfloatval_t /*step*/) {
  auto& c = *static_cast<LbfgsContext*>(instance);
  try {
    const InnerObjective::Value v = c.h->value_and_gradient(weights_from(x, c));
    const Tensor g64 = v.grad.to(Device::cpu).to(DType::f64);
    std::copy(g64.data<double>(), g64.data<double>() + n, g);
    return v.value;
  } catch (const InnerDivergence&) {
    // A trial point of the line search where the loss is not finite or above the problem's
    // bound: not an error of the method, just a step too long.
    std::fill(g, g + n, 0.0);
    return std::numeric_limits<double>::infinity();
  } catch (...) {
    if (!c.error) c.error = std::current_exception();
    std::fill(g, g + n, 0.0);
    return std::numeric_limits<double>::infinity();
  }
}

int progress(void* instance, const lbfgsfloatval_t*, const lbfgsfloatval_t*, const lbfgsfloatval_t,
             const lbfgsfloatval_t, const lbfgsfloatval_t gnorm, const lbfgsfloatval_t, int, int k, int) {
  auto& c = *static_cast<LbfgsContext*>(instance);
  c.iterations = k;
  c.grad_norm = gnorm;
  return (c.error || gnorm <= c.tolerance || c.out_of_passes()) ? LBFGS_STOP : 0;  // non-zero: libLBFGS stops
}

/// Why L-BFGS stopped, for the row; a code that means misuse or failure throws instead.
std::string lbfgs_status(int code, const LbfgsContext& c) {
  switch (code) {
    case LBFGS_STOP: return c.grad_norm <= c.tolerance || c.error ? "tolerance reached" : "pass budget reached";
    case LBFGS_SUCCESS: return "converged (zero gradient)";
    case LBFGS_ALREADY_MINIMIZED: return "already minimized";
    case LBFGSERR_MAXIMUMITERATION: return "max iterations";
    // The line search could make no more progress: near the optimum, at the precision limit.
    case LBFGSERR_ROUNDING_ERROR:
    case LBFGSERR_MINIMUMSTEP:
    case LBFGSERR_MAXIMUMSTEP:
    case LBFGSERR_MAXIMUMLINESEARCH:
    case LBFGSERR_WIDTHTOOSMALL:
    case LBFGSERR_INCORRECT_TMINMAX:
    case LBFGSERR_OUTOFINTERVAL:
    case LBFGSERR_INCREASEGRADIENT:
      return "line search stalled (libLBFGS code " + std::to_string(code) + ") at |grad| = " +
             std::to_string(c.grad_norm);
    default: throw Error("HOAG: libLBFGS failed with code " + std::to_string(code) + " on the inner problem");
  }
}

/// Minimizes h from w until ‖∇h‖ ≤ tolerance (or L-BFGS can go no further).
InnerSolve run_lbfgs(InnerObjective& h, const Tensor& w, const InnerObjective::Value& at_w, double tolerance,
                     const HoagOptions& o, std::function<bool()> out_of_passes) {
  InnerSolve out;
  out.w = w;
  out.value = at_w.value;
  out.grad_norm = norm(at_w.grad);
  if (out.grad_norm <= tolerance) {  // the warm start is good enough: no iteration
    out.status = "warm start within tolerance";
    return out;
  }
  LbfgsContext c;
  c.h = &h;
  c.shape = w.shape();
  c.dtype = w.dtype();
  c.device = w.device();
  c.tolerance = tolerance;
  c.out_of_passes = std::move(out_of_passes);
  c.grad_norm = out.grad_norm;
  const int n = static_cast<int>(w.numel());
  lbfgsfloatval_t* x = lbfgs_malloc(n);
  require(x != nullptr, "HOAG: libLBFGS could not allocate " + std::to_string(n) + " variables");
  const Tensor w64 = w.to(Device::cpu).to(DType::f64);
  std::copy(w64.data<double>(), w64.data<double>() + n, x);
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.m = o.lbfgs_memory;
  param.epsilon = 0;  // our own test, on ‖∇h‖ itself, in progress()
  param.max_iterations = o.max_inner_iterations;
  // Backtracking (Armijo + Wolfe) rather than Moré-Thuente: it only halves on a +inf trial value.
  param.linesearch = LBFGS_LINESEARCH_BACKTRACKING;
  param.max_linesearch = static_cast<int>(kLineSearchPasses - 1);
  lbfgsfloatval_t fx = 0;
  const int code = lbfgs(n, x, &fx, evaluate, progress, &c, &param);
  out.w = weights_from(x, c);
  lbfgs_free(x);
  if (c.error) std::rethrow_exception(c.error);
  out.value = fx;
  out.iterations = c.iterations;
  out.grad_norm = c.grad_norm;
  out.status = lbfgs_status(code, c);
  return out;
}

// --- the step-size rule ------------------------------------------------------------------------

/// The Lipschitz estimate L and what the sufficient-decrease test last did to it.
struct StepSize {
  double L = 0;
  std::string change;

  void start(const Tensor& p, std::int64_t N, double initial_step) {
    const double pn = norm(p);
    L = initial_step > 0 ? 1.0 / initial_step : (pn > 1e-3 ? pn * static_cast<double>(N) : 1.0);
    change = "initial";
  }
  /// g, eps: this iteration's validation loss and tolerance; the previous ones; Δ = ‖θ_k − θ_{k−1}‖.
  void adapt(double g, double eps, double g_prev, double eps_prev, double delta) {
    if (g - eps <= g_prev + eps_prev + eps_prev * delta - 0.5 * L * delta * delta) {
      L *= 0.95;
      change = "grew (sufficient decrease)";
    } else if (g > g_prev) {
      L *= 2;
      change = "shrank (validation loss rose)";
    } else {
      change = "kept (decrease, not sufficient)";
    }
  }
};

/// P_D: the box [theta_min, theta_max] on θ, then the groups' ranges on λ (Hyperparameters::project).
Tensor projected_step(const Hyperparameters& h, const Tensor& theta, const Tensor& p, double step, const HoagOptions& o) {
  std::vector<double> th = theta.to_vector();
  const std::vector<double> g = p.to_vector();
  for (std::size_t i = 0; i < th.size(); ++i) th[i] = std::clamp(th[i] - step * g[i], o.theta_min, o.theta_max);
  h.project(th);
  return Tensor::from(th, theta.shape(), DType::f64);
}

}  // namespace

HoagRun run_hoag(const BilevelProblem& problem, const HoagOptions& options, const Tensor& theta0) {
  const auto start = Clock::now();
  require_loss_defining(problem.hyper, "HOAG");
  options.validate();
  problem.validate();
  const std::int64_t N = problem.hyper.size();
  Tensor theta = theta0.defined() ? theta0.to(DType::f64).clone() : problem.hyper.initial(DType::f64);
  problem.hyper.check_range(theta, "HOAG");
  theta = theta.reshape(Shape{N});

  HoagRun run;
  run.stop_reason = "max iterations (" + std::to_string(options.max_iterations) + ")";
  Tensor w = problem.w0.clone();
  Tensor q;                              // CG's warm start: the previous q
  double inner_scale = 0, cg_scale = 0;  // the first iteration's ‖∇h‖ and ‖∇_w L_val‖
  StepSize step;
  std::int64_t passes_before = 0;  // the earlier iterations' passes (max_passes)
  double g_prev = 0, eps_prev = 0;
  Tensor theta_prev;
  report_progress("HOAG", 0, options.max_iterations);
  // The loop's body is a try-block: an iteration whose training loss or hypergradient diverges
  // ends the run there, recorded as a failed trial (the iterations before it are kept).
  for (int k = 1; k <= options.max_iterations; ++k) try {
    const auto iteration_start = Clock::now();
    HoagIteration row;
    row.k = k;
    row.theta = theta.clone();
    row.epsilon = hoag_tolerance(options, k);
    Unroll u(problem, theta);
    InnerObjective h(u, options.batches, "HOAG");

    // (i) w_k: L-BFGS from w_{k−1} to ‖∇_w h‖ ≤ ε_k ‖∇_w h(w_1⁰)‖.
    const InnerObjective::Value at_start = h.value_and_gradient(w);
    if (k == 1) inner_scale = std::max(norm(at_start.grad), 1e-300);
    const auto passes_left = [&] {
      return options.max_passes - passes_before - (u.counts.gradients + u.counts.fwd_over_rev);
    };
    const InnerSolve inner = run_lbfgs(h, w, at_start, row.epsilon * inner_scale, options, [&] {
      return options.max_passes > 0 && passes_left() <= kLineSearchPasses + kHypergradientPasses;
    });
    w = inner.w;
    row.train_loss = inner.value;
    row.inner_iterations = inner.iterations;
    row.inner_grad_norm = inner.grad_norm;
    row.inner_status = inner.status;

    // (ii)-(iii) q_k by CG from q_{k−1}, and p_k = ∂_θ L_val − ∂_θ(q_k · ∇_w h) (implicit.h).
    ImplicitOptions io;
    io.solver = ImplicitSolver::cg;
    io.iterations = options.max_cg_iterations;
    if (options.max_passes > 0) {  // CG's products, besides the right-hand side and the mixed product
      const std::int64_t cg_passes = passes_left() - kHypergradientPasses;
      if (cg_passes < 1) {
        run.stop_reason = "pass budget (" + std::to_string(options.max_passes) + ") reached in iteration " +
                          std::to_string(k) + "'s inner solve";
        break;
      }
      io.iterations = static_cast<int>(std::min<std::int64_t>(io.iterations, cg_passes));
    }
    io.cg_tolerance = row.epsilon;
    io.cg_reference_norm = cg_scale;  // 0 on the first iteration: relative to its own ‖∇_w L_val‖
    io.warm_start = q;
    io.hessian_batches = options.batches;
    ImplicitResult r = implicit_at(u, w, io, "HOAG");
    if (k == 1) cg_scale = std::max(r.rhs_norm, 1e-300);
    q = r.solve.q;
    row.val_loss = r.hypergradient.val_loss;
    row.hypergradient = r.hypergradient.d_theta.to(DType::f64);
    row.cg_iterations = r.solve.iterations;
    row.cg_residual = r.residual;

    // The step size: sufficient-decrease test on the step that led here, then (iv).
    if (k == 1) {
      step.start(row.hypergradient, N, options.initial_step);
    } else {
      Tensor d = theta.clone();
      axpy(d, -1.0, theta_prev);
      step.adapt(row.val_loss, row.epsilon, g_prev, eps_prev, norm(d));
    }
    row.step_change = step.change;
    const bool zero = norm(row.hypergradient) == 0;
    row.step_size = zero ? 0 : 1.0 / step.L;
    theta_prev = theta;
    if (!zero) theta = projected_step(problem.hyper, theta, row.hypergradient, 1.0 / step.L, options);
    g_prev = row.val_loss;
    eps_prev = row.epsilon;

    detail::record_counts(row.cost, u.counts);
    row.cost.directions = 1;
    // CG's vectors, and L-BFGS's m correction pairs (s, y) of float64 [P].
    row.cost.peak_bytes = r.hypergradient.cost.peak_bytes +
                          2 * static_cast<std::size_t>(options.lbfgs_memory * w.numel()) * sizeof(double);
    row.cost.seconds = std::chrono::duration<double>(Clock::now() - iteration_start).count();
    run.iterations.push_back(std::move(row));
    report_progress("HOAG", k, options.max_iterations);
    // A zero hypergradient moves nothing; the next, tighter ε_k decides (as the reference does).
    if (options.on_iteration && !options.on_iteration(run.iterations.back())) {
      run.stop_reason = "stopped by the caller after iteration " + std::to_string(k);
      break;
    }
    passes_before += u.counts.gradients + u.counts.fwd_over_rev;
    if (options.max_passes > 0 && options.max_passes - passes_before < kLineSearchPasses + kHypergradientPasses + 2) {
      run.stop_reason = "pass budget (" + std::to_string(options.max_passes) + "): " + std::to_string(passes_before) +
                        " passes used after iteration " + std::to_string(k);
      break;
    }
  } catch (const InnerDivergence& e) {
    const std::string reason = "HOAG iteration " + std::to_string(k) + ": " + e.what();
    run.failure = failed_trial(problem.hyper, theta, "hoag", k - 1, e.step(), e.value(), reason);
    run.stop_reason = "diverged: " + reason;
    break;
  }
  run.theta = theta;
  run.w = w;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

namespace {

/// "alpha=0.1" for one or two entries; "mean -2.1 in [-6.9, 0.3]" (raw θ) for more.
std::string theta_summary(const Hyperparameters& hyper, const Tensor& theta) {
  std::ostringstream s;
  s << std::setprecision(5);
  const std::vector<double> t = theta.to_vector();
  if (t.size() <= 2) {
    for (std::size_t i = 0; i < t.size(); ++i) s << (i ? "," : "") << hyper.entry_name(static_cast<std::int64_t>(i)) << "=" << t[i];
    return s.str();
  }
  double sum = 0;
  for (double x : t) sum += x;
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  s << "mean " << sum / static_cast<double>(t.size()) << " in [" << *lo << ", " << *hi << "]";
  return s.str();
}

}  // namespace

std::string HoagRun::table(const Hyperparameters& hyper) const {
  std::ostringstream s;
  s << std::setprecision(6);
  s << "  k  raw theta                      L_val         |p|           eps        step       inner  cg   ("
    << stop_reason << ")\n";
  for (const HoagIteration& it : iterations) {
    s << std::setw(3) << it.k << "  " << std::left << std::setw(29) << theta_summary(hyper, it.theta) << std::right
      << "  " << std::setw(12) << it.val_loss << "  " << std::setw(12) << norm(it.hypergradient) << "  " << std::setw(9)
      << it.epsilon << "  " << std::setw(9) << it.step_size << "  " << std::setw(5) << it.inner_iterations << "  "
      << std::setw(3) << it.cg_iterations << "\n";
  }
  return s.str();
}

}  // namespace gradhpo::hpo
