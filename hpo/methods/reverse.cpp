#include "reverse.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "backward.h"
#include "exact_rep.h"
#include "../progress.h"
#include "../tensor_math.h"

namespace gradhpo::hpo {

const char* policy_name(ReversePolicy p) {
  switch (p) {
    case ReversePolicy::store_all: return "store-all";
    case ReversePolicy::exact_reversal: return "exact-reversal";
    case ReversePolicy::checkpoint: return "checkpoint";
    case ReversePolicy::automatic: return "auto";
  }
  return "?";
}

ReversePolicy parse_policy(const std::string& name) {
  for (ReversePolicy p : {ReversePolicy::store_all, ReversePolicy::exact_reversal, ReversePolicy::checkpoint,
                          ReversePolicy::automatic})
    if (name == policy_name(p)) return p;
  throw Error("unknown reverse-mode policy '" + name + "' (expected store-all, exact-reversal, checkpoint or auto)");
}

void parse_budget(const std::string& text, ReverseOptions& o) {
  if (text == "none" || text.empty()) {
    o.budget = ReverseOptions::Budget::none;
    return;
  }
  if (text == "fastest" || text == "least-memory") {
    o.budget = text == "fastest" ? ReverseOptions::Budget::fastest : ReverseOptions::Budget::least_memory;
    return;
  }
  std::size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  const double scale = unit.empty() ? 1 : unit == "k" || unit == "K" ? 1e3 : unit == "M" ? 1e6 : unit == "G" ? 1e9 : unit == "T" ? 1e12 : -1;
  require(used > 0 && scale > 0 && value >= 0 && std::isfinite(value),
          "reverse mode: memory-budget '" + text + "' is not none, fastest, least-memory or a byte count (e.g. 2e9, 500M, 1.5G)");
  o.budget = ReverseOptions::Budget::bytes;
  o.budget_bytes = static_cast<std::size_t>(value * scale);
}

namespace {

using detail::Adjoint;
using detail::backward_step;
using detail::start_backward;

/// Exact reversal with β = 0 destroys v entirely at every step: the information buffer would
/// keep all 64 bits of every v_i, every step — no saving over storing the trajectory.
std::string zero_momentum_message(const BilevelProblem& p, std::int64_t steps, const std::string& why) {
  const double bytes = 8.0 * static_cast<double>(p.num_params()) * static_cast<double>(steps);
  std::ostringstream m;
  m << "reverse mode: exact reversal refuses momentum beta = 0 (" << why
    << "): multiplying v by 0 destroys it, so the information buffer would keep ~64 bits per parameter per step, "
    << bytes / 1e6 << " MB for P = " << p.num_params() << " and T = " << steps
    << " (no saving over storing the trajectory); use policy=checkpoint (or store-all)";
  return m.str();
}

/// A learned momentum can be exactly 0 at some step: refused before training, as above. Returns
/// the momentum's rational when every step and parameter has the same one (the information
/// buffer then streams, exact_rep.h), else Rational{} (n = 0).
Rational check_momentum(Unroll& u, const Segment& seg) {
  double single = -1;
  bool same = true;
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const std::int64_t t = seg.first + k;
    const std::vector<double> beta = u.optimizer_values(t).momentum.to_vector();
    for (std::size_t i = 0; i < beta.size(); ++i) {
      if (beta[i] == 0)
        throw Error(zero_momentum_message(u.problem(), seg.steps, "the momentum is exactly 0 at step " + std::to_string(t) +
                                                                      (beta.size() > 1 ? ", entry " + std::to_string(i) : std::string())));
      if (single < 0) single = beta[i];
      same = same && beta[i] == single;
    }
  }
  if (!same || !(single > 0 && single < 1)) return {};
  const Rational r = rational_approximation(single);
  return r.n > 0 && r.n < r.d ? r : Rational{};
}

/// The backward pass's end: dL_val/dθ = θ̄, dL_val/dw_start = w̄ (Method::compute does the rest).
void finish(Adjoint& a, MethodOutput& out) {
  out.val_loss = a.val_loss;
  out.d_theta = std::move(a.theta);
  out.direct = std::move(a.direct);
  out.d_w0 = a.state.parts[0];
  out.cost.directions = 1;
}

std::size_t step_bytes(const InnerState& s) { return s.nbytes() + s.w().nbytes(); }  // S_t and g_t

/// Steps per segment of a checkpointed replay: ⌈√T⌉ unless given, which minimizes the snapshots
/// (T/c) plus one replayed segment (c).
std::int64_t default_every(std::int64_t steps, std::int64_t every) {
  return every > 0 ? every : static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(steps))));
}

/// Stored passes for the last `kept` steps of the segment (they all live at the turn of the sweep,
/// whichever they are; the last ones are freed first).
void keep_last_passes(Unroll& u, const Segment& seg, std::int64_t kept, std::int64_t k) {
  if (k >= seg.steps - kept) u.keep_pass(seg.first + k);
}

// Store-all keeps what only a pass over the data can give: g_t, for every step. S_t is not kept:
// S_{t+1} = Φ(S_t, g_t, λ_t) is the optimizer's step alone, elementwise over P, so the backward
// sweep replays it from a snapshot of S every c = ⌈√T⌉ steps, one segment at a time — the same
// ops on the same values as training, so the same bits. Memory T·P + 2√T·|S| (SGD: ~1 number
// per parameter per step, where keeping S_t and g_t took 3), for one extra optimizer step per step.
MethodOutput store_all(Unroll& u, const Segment& seg, std::int64_t kept) {
  MethodOutput out;
  out.label = "reverse (store-all)";
  const std::int64_t c = default_every(seg.steps, 0);
  MemoryMeter mem;
  std::vector<InnerState> snapshots;  // S_{bc}
  std::vector<Tensor> grads;          // g_t, every step
  grads.reserve(static_cast<std::size_t>(seg.steps));
  InnerState s = seg.start;
  report_progress("reverse", 0, 2 * seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const std::int64_t t = seg.first + k;
    if (k % c == 0) {
      snapshots.push_back(s);
      mem.add(s.nbytes());
    }
    keep_last_passes(u, seg, kept, k);
    const LossPass lp = u.gradient(s.w(), t);
    out.final_train_loss = lp.loss;
    grads.push_back(lp.grad);
    mem.add(lp.grad.nbytes());
    s = u.step(s, lp.grad, t);
    report_progress("reverse", k + 1, 2 * seg.steps);
  }
  out.cost.trajectory_bytes = mem.peak();
  Adjoint a = start_backward(u, s);
  mem.add(a.state.nbytes());
  out.final_state = s;
  for (std::int64_t b = static_cast<std::int64_t>(snapshots.size()); b-- > 0;) {
    // S_t for the segment [b c, min((b+1) c, T)): its snapshot, then the optimizer steps along the kept g_t.
    const std::int64_t k0 = b * c, k1 = std::min(k0 + c, seg.steps);
    std::vector<InnerState> states{std::move(snapshots[static_cast<std::size_t>(b)])};
    for (std::int64_t k = k0 + 1; k < k1; ++k) {
      states.push_back(u.step(states.back(), grads[static_cast<std::size_t>(k - 1)], seg.first + k - 1));
      mem.add(states.back().nbytes());
    }
    for (std::int64_t k = k1; k-- > k0;) {
      Tensor& g = grads[static_cast<std::size_t>(k)];
      backward_step(u, states[static_cast<std::size_t>(k - k0)], g, seg.first + k, a);
      mem.remove(g.nbytes() + states[static_cast<std::size_t>(k - k0)].nbytes());
      states.pop_back();
      g = Tensor();  // no longer needed
      report_progress("reverse", 2 * seg.steps - k, 2 * seg.steps);
    }
  }
  // At the turn of the sweep every stored pass is alive, each also holding its w_t.
  out.cost.peak_bytes = mem.peak() + u.kept_peak() + static_cast<std::size_t>(kept) * seg.start.w().nbytes();
  out.notes.push_back("store-all: g_t kept for all " + std::to_string(seg.steps) + " steps, S_t replayed by the optimizer step from " +
                      std::to_string((seg.steps + c - 1) / c) + " snapshots every " + std::to_string(c) + " steps");
  finish(a, out);
  return out;
}

MethodOutput checkpointed(Unroll& u, const Segment& seg, std::int64_t every, std::int64_t kept) {
  MethodOutput out;
  const std::int64_t c = every > 0 ? every : static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(seg.steps))));
  out.label = "reverse (checkpoint every " + std::to_string(c) + ")";
  MemoryMeter mem;
  std::vector<InnerState> snapshots;
  InnerState s = seg.start;
  report_progress("reverse", 0, 2 * seg.steps);
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    if (k % c == 0) {
      snapshots.push_back(s);
      mem.add(s.nbytes());
    }
    const LossPass lp = u.gradient(s.w(), seg.first + k);
    out.final_train_loss = lp.loss;
    s = u.step(s, lp.grad, seg.first + k);
    report_progress("reverse", k + 1, 2 * seg.steps);
  }
  Adjoint a = start_backward(u, s);
  mem.add(a.state.nbytes());
  out.final_state = s;
  std::size_t replay_peak = 0;
  for (std::int64_t b = static_cast<std::int64_t>(snapshots.size()); b-- > 0;) {
    // Replay segment [b c, min((b+1) c, steps)) from its snapshot, keeping its S_t and g_t.
    const std::int64_t k0 = b * c, k1 = std::min(k0 + c, seg.steps);
    std::vector<InnerState> states;
    std::vector<Tensor> grads;
    InnerState r = snapshots[static_cast<std::size_t>(b)];
    std::size_t bytes = 0;
    for (std::int64_t k = k0; k < k1; ++k) {
      if (k >= k1 - kept) u.keep_pass(seg.first + k);  // the segment's last `kept` replayed passes
      const LossPass lp = u.gradient(r.w(), seg.first + k);
      states.push_back(r);
      grads.push_back(lp.grad);
      bytes += step_bytes(r);
      mem.add(step_bytes(r));
      if (k + 1 < k1) r = u.step(r, lp.grad, seg.first + k);
    }
    replay_peak = std::max(replay_peak, bytes);
    for (std::int64_t k = k1; k-- > k0;)
      backward_step(u, states[static_cast<std::size_t>(k - k0)], grads[static_cast<std::size_t>(k - k0)], seg.first + k, a);
    report_progress("reverse", 2 * seg.steps - k0, 2 * seg.steps);
    mem.remove(bytes);
    mem.remove(snapshots[static_cast<std::size_t>(b)].nbytes());
    snapshots[static_cast<std::size_t>(b)] = InnerState();
  }
  out.cost.checkpoint_bytes = mem.peak() - a.state.nbytes();
  out.cost.peak_bytes = mem.peak() + u.kept_peak();
  out.notes.push_back(std::to_string((seg.steps + c - 1) / c) + " snapshots of S_t, segments of " + std::to_string(c) +
                      " steps replayed (peak replay buffer " + std::to_string(replay_peak) + " bytes)");
  finish(a, out);
  return out;
}

// Exact reversal keeps w and v as fixed-point integers with an information buffer on the HOST
// (hpo/exact_rep.h: 64-bit integer arithmetic and a per-parameter bit stack, which no GPU kernel
// here reproduces). On a device problem it therefore copies per step: w_t goes to the device for
// each gradient and Hessian pass, g_t and the step's hyperparameter values come back to the host
// for the integer update. Exact and device-agnostic, at the price of two copies of P numbers per
// step each way.
MethodOutput exact_reversal(Unroll& u, const Segment& seg, int radix_bits, std::int64_t kept) {
  const BilevelProblem& p = u.problem();
  const Rational single_momentum = check_momentum(u, seg);
  MethodOutput out;
  out.label = "reverse (exact reversal)";
  const Device dev = u.device();
  auto host = [](const Tensor& t) { return t.to(Device::cpu); };
  ExactSgd run(host(seg.start.w()), host(seg.start.parts[1]), radix_bits, single_momentum);
  const std::vector<std::int64_t> w_start = run.w_int(), v_start = run.v_int();
  report_progress("reverse", 0, 2 * seg.steps);
  Tensor w_host = run.w();  // the fixed-point w as a tensor: each step's loop writes the next one
  for (std::int64_t k = 0; k < seg.steps; ++k) {
    const std::int64_t t = seg.first + k;
    keep_last_passes(u, seg, kept, k);
    const LossPass lp = u.gradient(w_host.to(dev), t);
    out.final_train_loss = lp.loss;
    const Unroll::OptimizerValues h = u.optimizer_values(t);
    // Fixed-point weights are always finite (a non-finite gradient was caught above, in
    // u.gradient); the run diverges here by leaving the fixed-point range.
    try {
      run.forward(host(lp.grad), host(h.lr), host(h.momentum), host(h.weight_decay), t, &w_host);
    } catch (const FixedPointRange& e) {
      throw InnerDivergence("inner training diverged at step " + std::to_string(t) + ": " + e.what(), t);
    }
    report_progress("reverse", k + 1, 2 * seg.steps);
  }
  const double bits = run.buffer().bits();
  const std::size_t buffer_bytes = run.buffer().nbytes();
  InnerState s{{run.w().to(dev), run.v().to(dev)}};
  Adjoint a = start_backward(u, s);
  out.final_state = s;
  const Tensor zero_g = Tensor::zeros(s.w().shape(), s.w().dtype(), dev);
  for (std::int64_t k = seg.steps; k-- > 0;) {
    const std::int64_t t = seg.first + k;
    const Unroll::OptimizerValues h = u.optimizer_values(t);
    Tensor w_host_t, v_host_next, v_host_t;
    run.reverse_w(host(h.lr), &w_host_t, &v_host_next);  // w_t = w_{t+1} + α v_{t+1}, with w_t and v_{t+1} as tensors
    const Tensor w_t = w_host_t.to(dev);
    // SGD's step is affine in (S, g) with coefficients set by λ_t alone, so ḡ_t = ∂Φ/∂g^T S̄_{t+1}
    // is known before v_t and g_t are: a step VJP at stand-in values (v_{t+1} for v_t, zero g)
    // gives it. Then ONE forward-over-reverse pass along ḡ_t returns g_t (the same bits as the
    // forward pass's) beside H ḡ_t — no separate gradient pass to recover v_t.
    const Tensor v_next = v_host_next.to(dev);
    const Tensor adj_g = u.step_vjp(InnerState{{w_t, v_next}}, zero_g, t, a.state, /*g_only=*/true).adj_g;
    const LossPass hv = u.loss_pass(w_t, t, adj_g, Tensor(), /*theta_adjoint=*/true);
    run.reverse_v(host(hv.grad), host(h.momentum), host(h.weight_decay), &v_host_t);  // v_t = (v_{t+1} − g_t − μ w_t) / β
    StepVjp b = u.step_vjp(InnerState{{w_t, v_host_t.to(dev)}}, hv.grad, t, a.state);
    // Affinity is a property of the optimizer's formula, not of the step: checked once (on a
    // device the comparison copies both vectors to the host).
    if (k == seg.steps - 1)
      require(same_bits(b.adj_g, adj_g), "exact reversal: ∂Φ/∂g depends on the optimizer state at step " +
                                             std::to_string(t) + "; the step is not affine in (S, g)");
    detail::accumulate_step(std::move(b), hv, a);
    report_progress("reverse", 2 * seg.steps - k, 2 * seg.steps);
  }
  require(run.w_int() == w_start && run.v_int() == v_start,
          "exact reversal: the backward pass did not recover w_0, v_0 bit for bit (is the training loss "
          "deterministic? the gradient at a recovered w_t must repeat the forward pass's bits)");
  out.cost.info_buffer_bytes = buffer_bytes;
  out.cost.trajectory_bytes = run.state_bytes();
  out.cost.peak_bytes = buffer_bytes + run.state_bytes() + a.state.nbytes() + u.kept_peak() +
                        static_cast<std::size_t>(kept) * seg.start.w().nbytes();  // stored passes hold their w_t
  out.cost.info_bits_per_parameter_step = bits / (static_cast<double>(p.num_params()) * static_cast<double>(seg.steps));
  std::ostringstream note;
  note << "exact reversal: fixed point 2^-" << radix_bits << ", information buffer "
       << out.cost.info_bits_per_parameter_step << " bits per parameter per step";
  const Rational r = run.rational(u.optimizer_values(seg.first).momentum.at(0));
  note << " (momentum at the first step as " << r.n << "/" << r.d << "; "
       << (run.buffer().streaming() ? "one momentum for the run: streaming buffer, O(1) per step)"
                                    : "momenta vary: arbitrary-precision buffer)");
  out.notes.push_back(note.str());
  if (dev != Device::cpu)
    out.notes.push_back(std::string("exact reversal on ") + device_name(dev) +
                        ": the fixed-point state and its information buffer live on the host; w_t, v_t and g_t "
                        "crossed between host and device at every step");
  finish(a, out);
  return out;
}

/// reverse_along's method: the backward pass along states and gradients given from outside.
class AlongMethod final : public Method {
 public:
  AlongMethod(const std::vector<InnerState>& states, const std::vector<Tensor>& grads, const InnerState& final_state,
              std::int64_t first)
      : Method("reverse-along", Options(), Support{}), states_(states), grads_(grads), final_(final_state), first_(first) {}
  Estimate estimate(const BilevelProblem&) const override { return {}; }

 protected:
  MethodOutput run(Unroll& u, const Segment&) const override {
    MethodOutput out;
    out.label = "reverse (along a given trajectory)";
    Adjoint a = start_backward(u, final_);
    out.final_state = final_;
    for (std::size_t k = states_.size(); k-- > 0;) backward_step(u, states_[k], grads_[k], first_ + static_cast<std::int64_t>(k), a);
    finish(a, out);
    return out;
  }

 private:
  const std::vector<InnerState>& states_;
  const std::vector<Tensor>& grads_;
  const InnerState& final_;
  std::int64_t first_;
};

}  // namespace

const OptionSpecs& reverse_option_specs() {
  static const OptionSpecs specs = {
      OptionSpec::choice("policy", "store-all", {"store-all", "exact-reversal", "checkpoint", "auto"},
                         "memory policy of the backward pass: keep every S_t, run SGD backwards exactly "
                         "(Maclaurin et al. 2015), keep every c-th S_t and replay, or auto (chosen by memory-budget)"),
      OptionSpec::integer("checkpoint-every", 0, 0, std::int64_t{1} << 40, "checkpoint: steps per segment c (0: ceil(sqrt(T)))"),
      OptionSpec::integer("radix-bits", 44, 1, 60, "exact reversal: fixed point with resolution 2^-radix-bits"),
      OptionSpec::text("memory-budget", "none",
                       "none; fastest; least-memory; or bytes (2e9, 500M, 1.5G): keep each step's recorded pass of "
                       "L_train (no primal recomputation in the backward sweep) for as many steps as fit, and with "
                       "policy=auto choose the fastest policy that fits"),
  };
  return specs;
}

ReverseMethod::ReverseMethod(const Options& options) : Method("reverse", options, Support{}) {
  o_.policy = parse_policy(options.text("policy"));
  o_.checkpoint_every = options.integer("checkpoint-every");
  o_.radix_bits = static_cast<int>(options.integer("radix-bits"));
  parse_budget(options.text("memory-budget"), o_);
  require(o_.policy != ReversePolicy::automatic || o_.budget != ReverseOptions::Budget::none,
          "reverse mode: policy=auto chooses by the memory budget: give memory-budget (fastest, least-memory or bytes)");
}

void ReverseMethod::check_problem(const BilevelProblem& problem) const {
  if (o_.policy == ReversePolicy::exact_reversal) check_problem_for_exact(problem);
}

void ReverseMethod::check_problem_for_exact(const BilevelProblem& problem) {
  require(problem.optimizer.kind == nn::OptimizerKind::sgd,
          "reverse mode: exact reversal runs SGD with momentum backwards; the problem's optimizer is Adam "
          "(use the store-all or checkpoint policy)");
  if (problem.hyper.find(HyperKind::momentum) < 0 && problem.optimizer.momentum == 0)
    throw Error(zero_momentum_message(problem, problem.horizon, "the optimizer's momentum is 0"));
}

namespace {

/// The buffers of a policy, in bytes, stored passes aside (ReverseMethod::estimate's model).
std::size_t policy_bytes(const BilevelProblem& p, ReversePolicy policy, std::int64_t every, double* gradients,
                         std::string* why);

bool exact_reversal_applies(const BilevelProblem& p) {
  return p.optimizer.kind == nn::OptimizerKind::sgd && (p.hyper.find(HyperKind::momentum) >= 0 || p.optimizer.momentum != 0);
}

/// What a run does: the policy, its checkpoint segment, and how many stored passes (store-all and
/// exact reversal: of the whole segment; checkpointing: of each replayed segment).
struct Plan {
  ReversePolicy policy = ReversePolicy::store_all;
  std::int64_t every = 0;
  std::int64_t kept = 0;
  std::size_t pass_bytes = 0, buffer_bytes = 0;
};

std::string describe(const Plan& plan, const Segment& seg, const ReverseOptions& o) {
  std::ostringstream m;
  m << "memory plan (";
  if (o.budget == ReverseOptions::Budget::bytes) m << "budget " << o.budget_bytes << " bytes";
  else m << (o.budget == ReverseOptions::Budget::fastest ? "fastest" : "least memory");
  m << "): " << policy_name(plan.policy);
  if (plan.policy == ReversePolicy::checkpoint)
    m << " every " << plan.every << " steps, stored passes for the last " << plan.kept << " steps of each replayed segment";
  else
    m << ", stored passes for " << plan.kept << " of " << seg.steps << " steps";
  m << " (" << plan.pass_bytes << " bytes each), recomputed for the rest; buffers ~" << plan.buffer_bytes << " bytes";
  return m.str();
}

}  // namespace

MethodOutput ReverseMethod::run(Unroll& u, const Segment& seg) const {
  const BilevelProblem& p = u.problem();
  Plan plan;
  plan.policy = o_.policy;
  plan.every = default_every(seg.steps, o_.checkpoint_every);
  if (o_.budget != ReverseOptions::Budget::none) {
    // One recorded pass at the start (its values, as the budget will hold them). A stored pass
    // also holds its own w_t, which store-all and exact reversal do not otherwise keep
    // (checkpointing's replayed segment holds it anyway).
    const std::size_t pass = u.pass_bytes(seg.start.w(), seg.first);
    const std::size_t w_bytes = seg.start.w().nbytes();
    std::vector<ReversePolicy> candidates;
    if (o_.policy != ReversePolicy::automatic) candidates = {o_.policy};
    else if (o_.budget == ReverseOptions::Budget::least_memory)
      candidates = {exact_reversal_applies(p) ? ReversePolicy::exact_reversal : ReversePolicy::checkpoint};
    else {
      candidates = {ReversePolicy::store_all};
      if (exact_reversal_applies(p)) candidates.push_back(ReversePolicy::exact_reversal);
      candidates.push_back(ReversePolicy::checkpoint);
    }
    // Fastest first, by a cost in recomputed primal passes (bench/hypergradient_vs_pytorch.py
    // measured them): each step without a stored pass recomputes one; exact reversal's
    // fixed-point steps and second step VJP cost about one per step (0.5–1 on the MLP and the
    // logistic regression); checkpointing's replay is a gradient pass per step (about 3).
    // Ties go to store-all, the reference.
    auto cost = [&](const Plan& c) {
      const std::int64_t recomputed = c.policy == ReversePolicy::checkpoint
                                          ? seg.steps - c.kept * ((seg.steps + c.every - 1) / c.every)
                                          : seg.steps - c.kept;
      return std::max<std::int64_t>(recomputed, 0) + (c.policy == ReversePolicy::exact_reversal ? seg.steps : 0) +
             (c.policy == ReversePolicy::checkpoint ? 3 * seg.steps : 0);
    };
    bool found = false;
    std::size_t least = SIZE_MAX;
    for (ReversePolicy policy : candidates) {
      Plan c;
      c.policy = policy;
      c.every = plan.every;
      c.pass_bytes = pass + (policy == ReversePolicy::checkpoint ? 0 : w_bytes);
      BilevelProblem sized = p;  // the segment's horizon for the byte model
      sized.horizon = seg.steps;
      c.buffer_bytes = policy_bytes(sized, policy, c.every, nullptr, nullptr);
      const std::int64_t most = policy == ReversePolicy::checkpoint ? std::min(c.every, seg.steps) : seg.steps;
      least = std::min(least, c.buffer_bytes);
      if (o_.budget == ReverseOptions::Budget::fastest) c.kept = most;
      else if (o_.budget == ReverseOptions::Budget::least_memory) c.kept = 0;
      else if (c.buffer_bytes <= o_.budget_bytes)
        c.kept = std::min<std::int64_t>(most, static_cast<std::int64_t>((o_.budget_bytes - c.buffer_bytes) / std::max<std::size_t>(c.pass_bytes, 1)));
      else
        continue;
      if (!found || cost(c) < cost(plan)) plan = c;
      found = true;
    }
    if (!found)
      throw Error("reverse mode: no plan fits the memory budget of " + std::to_string(o_.budget_bytes) +
                  " bytes; the least memory any allowed policy needs is ~" + std::to_string(least) + " bytes");
    if (plan.policy == ReversePolicy::exact_reversal) check_problem_for_exact(p);
  }
  MethodOutput out;
  switch (plan.policy) {
    case ReversePolicy::store_all: out = store_all(u, seg, plan.kept); break;
    case ReversePolicy::checkpoint: out = checkpointed(u, seg, plan.every, plan.kept); break;
    case ReversePolicy::exact_reversal: out = exact_reversal(u, seg, o_.radix_bits, plan.kept); break;
    case ReversePolicy::automatic: throw Error("reverse mode: policy auto without a memory budget");
  }
  if (o_.budget != ReverseOptions::Budget::none) out.notes.push_back(describe(plan, seg, o_));
  return out;
}

namespace {

std::size_t policy_bytes(const BilevelProblem& p, ReversePolicy policy, std::int64_t every, double* gradients,
                         std::string* explain) {
  const double T = static_cast<double>(p.horizon);
  const std::size_t P = static_cast<std::size_t>(p.num_params()), sz = dtype_size(p.dtype());
  const std::size_t parts = p.optimizer.kind == nn::OptimizerKind::adam ? 3 : 2;
  const std::size_t state = parts * P * sz, grad = P * sz;  // S_t, g_t; the adjoint S̄ is one state
  std::size_t bytes = 0;
  double work = 0;
  std::ostringstream why;
  switch (policy) {
    case ReversePolicy::store_all:
    case ReversePolicy::automatic:
    {
      const std::int64_t c = default_every(p.horizon, 0);
      const std::int64_t n = (p.horizon + c - 1) / c;
      // g_t for every step, n snapshots of S, one replayed segment (c − 1 more states), the adjoint.
      bytes = static_cast<std::size_t>(p.horizon) * grad + static_cast<std::size_t>(n + c) * state;
      work = T + 4 * T + 1;  // forward gradients, one H·v pass per step, L_val
      why << "T = " << p.horizon << " stored g_t of P = " << P << " numbers, " << n << " snapshots of S_t (" << parts
          << " x P) every " << c << " steps with one replayed segment, and the adjoint";
      break;
    }
    case ReversePolicy::checkpoint: {
      const std::int64_t T_ = p.horizon;
      const std::int64_t c = default_every(T_, every);
      const std::int64_t n = (T_ + c - 1) / c;
      // Replaying segment b holds snapshots 0..b, the adjoint and the segment's (S_t, g_t).
      for (std::int64_t b = 0; b < n; ++b)
        bytes = std::max(bytes, static_cast<std::size_t>(b + 1) * state + state +
                                    static_cast<std::size_t>(std::min(c, T_ - b * c)) * (state + grad));
      work = 2 * T + 4 * T + 1;  // training, the replay, H·v per step, L_val
      why << n << " snapshots every " << c << " steps, one replayed segment of (S_t, g_t), and the adjoint";
      break;
    }
    case ReversePolicy::exact_reversal: {
      // Fixed-point w and v (int64), the information buffer (≈ log2(1/β) bits per parameter per
      // step, plus a head and one digit vector per parameter), and the adjoint.
      // A learned momentum's values are not known before θ is: β = 0.9 stands in for them.
      const bool learned = p.hyper.find(HyperKind::momentum) >= 0;
      const double beta = !learned && p.optimizer.momentum > 0 && p.optimizer.momentum < 1 ? p.optimizer.momentum : 0.9;
      const double bits = std::log2(1 / beta) * T * static_cast<double>(P);
      bytes = 2 * P * sizeof(std::int64_t) + P * (sizeof(std::uint64_t) + sizeof(std::vector<std::uint32_t>)) +
              static_cast<std::size_t>(std::ceil(bits / 8)) + state;
      work = T + 4 * T + 1;
      why << "fixed-point w, v and an information buffer of ~log2(1/beta) = " << std::log2(1 / beta)
          << " bits per parameter per step (beta = " << beta
          << (learned ? ", assumed: the momentum is learned)" : ", the optimizer's momentum)");
      break;
    }
  }
  if (gradients) *gradients = work;
  if (explain) *explain = why.str();
  return bytes;
}

}  // namespace

Estimate ReverseMethod::estimate(const BilevelProblem& p) const {
  Estimate e;
  ReversePolicy policy = o_.policy;
  if (policy == ReversePolicy::automatic)  // the plan's policy, as far as it is known before any pass
    policy = o_.budget == ReverseOptions::Budget::least_memory
                 ? (exact_reversal_applies(p) ? ReversePolicy::exact_reversal : ReversePolicy::checkpoint)
                 : ReversePolicy::store_all;
  e.buffer_bytes = policy_bytes(p, policy, o_.checkpoint_every, &e.gradient_equivalents, &e.explain);
  if (o_.budget == ReverseOptions::Budget::bytes) {
    e.buffer_bytes = std::max(e.buffer_bytes, o_.budget_bytes);
    e.explain += "; stored passes up to the memory budget of " + std::to_string(o_.budget_bytes) + " bytes";
  } else if (o_.budget == ReverseOptions::Budget::fastest) {
    e.explain += "; plus a stored pass of L_train per step (its size is known after the first pass)";
  }
  return e;
}

std::vector<Alternative> ReverseMethod::alternatives(const BilevelProblem& p) const {
  std::vector<Alternative> out;
  for (ReversePolicy policy : {ReversePolicy::exact_reversal, ReversePolicy::checkpoint, ReversePolicy::store_all}) {
    if (policy == o_.policy && policy != ReversePolicy::checkpoint) continue;
    if (policy == ReversePolicy::exact_reversal && !exact_reversal_applies(p)) continue;  // refused by check_problem
    std::string name = std::string("policy=") + policy_name(policy);
    std::int64_t every = 0;
    if (policy == ReversePolicy::checkpoint) {
      // ⌈√T⌉ minimizes the peak (snapshots plus one segment); offered unless it is this run's.
      every = default_every(p.horizon, 0);
      if (o_.policy == ReversePolicy::checkpoint && (o_.checkpoint_every == 0 || o_.checkpoint_every == every)) continue;
      name += " checkpoint-every=" + std::to_string(every);
    }
    Estimate e;
    e.buffer_bytes = policy_bytes(p, policy, every, &e.gradient_equivalents, &e.explain);
    out.push_back({name, e});
  }
  return out;
}

Hypergradient reverse_along(const BilevelProblem& problem, const Tensor& theta, const std::vector<InnerState>& states,
                            const std::vector<Tensor>& grads, const InnerState& final_state, std::int64_t first) {
  require(states.size() == grads.size() && !states.empty(), "reverse_along: one state and one gradient per step");
  return AlongMethod(states, grads, final_state, first).compute(problem, theta);
}

}  // namespace gradhpo::hpo
