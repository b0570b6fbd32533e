#include "forward.h"

#include <limits>

#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

namespace {

std::size_t bytes_of(const std::vector<Tensor>& ts) {
  std::size_t n = 0;
  for (const Tensor& t : ts)
    if (t.defined()) n += t.nbytes();
  return n;
}

/// ġ by K single-direction passes (the benchmark's baseline): row k of the result is the
/// pass seeded with row k of the directions.
LossPass column_by_column(Unroll& u, const Tensor& w, std::int64_t t, const Tensor& Z, const Tensor& theta_dirs,
                          std::int64_t K) {
  const std::int64_t P = w.numel(), N = u.theta().numel();
  LossPass out;
  out.grad_tangent = Tensor::zeros(Shape{K, P}, w.dtype(), w.device());
  for (std::int64_t k = 0; k < K; ++k) {
    const Tensor zk = Z.defined() ? Z.flat_slice(k * P, P).reshape(Shape{1, P}) : Tensor();
    const Tensor tk = theta_dirs.defined() ? theta_dirs.flat_slice(k * N, N).reshape(Shape{1, N}) : Tensor();
    const LossPass one = u.loss_pass(w, t, zk, tk, false);
    out.loss = one.loss;
    out.grad = one.grad;
    out.grad_tangent.flat_slice(k * P, P).copy_from(one.grad_tangent);
  }
  return out;
}

}  // namespace

const OptionSpecs& forward_option_specs() {
  constexpr double inf = std::numeric_limits<double>::max();
  static const OptionSpecs specs = {
      OptionSpec::real("clip-hessian", 0, 0, inf, "clip each entry of the Hessian-matrix product to +-c (0: off; Appendix B uses 10)"),
      OptionSpec::real("clip-hypergradient", 0, 0, inf, "clip each hypergradient entry to +-c (0: off)"),
      OptionSpec::boolean("truncate-alternate", false, "skip the H Z term on every other step (Section 4, after Shaban et al. 2019)"),
      OptionSpec::boolean("single-direction", false, "K single-direction passes per step instead of one K-direction pass (same numbers)"),
  };
  return specs;
}

ForwardMethod::ForwardMethod(const Options& options) : Method("forward", options, Support{}) {
  o_.clip_hessian_product = options.real("clip-hessian");
  o_.clip_hypergradient = options.real("clip-hypergradient");
  o_.truncate_alternate = options.boolean("truncate-alternate");
  o_.single_direction_passes = options.boolean("single-direction");
}

void ForwardMethod::check_problem(const BilevelProblem& problem) const {
  require(problem.hyper.size() >= 1, "forward mode: the problem has no hyperparameters to differentiate");
}

Estimate ForwardMethod::estimate(const BilevelProblem& p) const {
  // N: the columns this process carries (all of θ's, or its block).
  const ColumnBlocks* blocks = p.column_blocks.get();
  const std::size_t N = static_cast<std::size_t>(blocks ? blocks->block(p.hyper.size()).size() : p.hyper.size());
  const std::size_t P = static_cast<std::size_t>(p.num_params());
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  const std::size_t column = N * P * dtype_size(p.dtype());  // one [N, P] tangent
  Estimate e;
  // Held at once: dS_t/dθ, ġ_t and dS_{t+1}/dθ.
  e.buffer_bytes = (2 * parts + 1) * column;
  const double T = static_cast<double>(p.horizon), K = static_cast<double>(N);
  e.gradient_equivalents = (o_.single_direction_passes ? T * K * 4 : T * (2 + 2 * K)) + 1;
  e.explain = "tangents of the " + std::to_string(parts) + " state parts, twice, and of g: [N = " + std::to_string(N) +
              ", P = " + std::to_string(P) + "] each";
  return e;
}

MethodOutput ForwardMethod::run(Unroll& u, const Segment& seg) const {
  const ForwardOptions& o = o_;
  const BilevelProblem& problem = u.problem();
  const std::int64_t N = problem.hyper.size();
  const ColumnBlocks* blocks = problem.column_blocks.get();  // null: every column here
  if (blocks) u.set_theta_columns(blocks->block(N));
  const Shard columns = u.theta_columns();  // θ's entries whose columns this process carries
  const std::int64_t K = columns.size();
  MethodOutput out;
  out.label = "forward (K = " + std::to_string(K) + (K < N ? " of " + std::to_string(N) : std::string()) +
              (o.single_direction_passes ? ", one pass per column)" : ")");
  // θ's tangent seeds the loss tape only when some group enters L_train.
  const Tensor theta_dirs = problem.hyper.has_loss_defining() ? u.theta_identity() : Tensor();
  InnerState s = seg.start;
  std::vector<Tensor> Z(s.parts.size());  // dS_t/dθ, [K, P] per part; undefined = 0 (Z_first = 0)
  std::size_t peak = 0;
  report_progress("forward", 0, seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const std::int64_t t = seg.first + k;
    const bool skip_hz = o.truncate_alternate && (k % 2 == 1);
    const Tensor w_dirs = skip_hz ? Tensor() : Z[0];
    // ġ_t = H_t Z_t + ∂²L/∂w∂θ (Eq. 7's Hessian–matrix product), with g_t itself.
    LossPass lp = o.single_direction_passes && (w_dirs.defined() || theta_dirs.defined())
                      ? column_by_column(u, s.w(), t, w_dirs, theta_dirs, K)
                      : u.loss_pass(s.w(), t, w_dirs, theta_dirs, false);
    out.final_train_loss = lp.loss;
    Tensor g_dirs = (w_dirs.defined() || theta_dirs.defined()) ? lp.grad_tangent : Tensor();
    if (g_dirs.defined() && o.clip_hessian_product > 0) clip(g_dirs, o.clip_hessian_product);
    // (Z, C)_{t+1} = ∂Φ/∂S (Z, C)_t + ∂Φ/∂g ġ_t + ∂Φ/∂θ  (Eq. 5–7: A Z + B and the C recursion).
    StepJvp j = u.step_jvp(s, Z, lp.grad, g_dirs, t);
    // Held at once: Z_t, ġ_t and Z_{t+1}.
    peak = std::max(peak, bytes_of(Z) + (g_dirs.defined() ? g_dirs.nbytes() : 0) + bytes_of(j.tangents));
    s = std::move(j.next);
    Z = std::move(j.tangents);
    report_progress("forward", k + 1, seg.steps);
  }
  // dL_val/dθ = ∂_θ L_val + Z_T ∇_w L_val.
  const Unroll::ValPass val = u.validation(s.w());
  out.val_loss = val.loss;
  out.direct = val.grad_theta.clone();
  out.d_theta = val.grad_theta.clone();
  if (Z[0].defined()) {
    Tensor mine = out.d_theta.flat_slice(columns.begin, K);  // a view: this process's entries
    axpy(mine, 1.0, columns_dot(Z[0], val.grad_w).to(out.d_theta.dtype()));
  }
  if (o.clip_hypergradient > 0) clip(out.d_theta, o.clip_hypergradient);
  if (blocks) blocks->gather(out.d_theta);
  out.final_state = s;
  out.cost.tangent_bytes = peak;
  out.cost.peak_bytes = peak;
  out.cost.directions = o.single_direction_passes ? 1 : K;
  if (o.truncate_alternate) out.notes.push_back("truncated: H·Z skipped on every other step");
  if (o.clip_hessian_product > 0) out.notes.push_back("Hessian–matrix product clipped to ±" + std::to_string(o.clip_hessian_product));
  return out;
}

}  // namespace gradhpo::hpo
