#include "unroll.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "../engine/kernels/optim_step.h"
#include "../engine/kernels/vector.h"
#include "../engine/ops.h"
#include "tensor_math.h"

namespace gradhpo::hpo {

InnerState InnerState::clone() const {
  InnerState c;
  c.parts.reserve(parts.size());
  for (const Tensor& t : parts) c.parts.push_back(t.clone());
  return c;
}

std::size_t InnerState::nbytes() const {
  std::size_t n = 0;
  for (const Tensor& t : parts) n += t.nbytes();
  return n;
}

std::int64_t first_non_finite(const Tensor& x) { return kernels::first_non_finite(x); }

void BilevelProblem::validate() const {
  require(static_cast<bool>(train_loss), "bilevel problem: no training loss");
  require(static_cast<bool>(val_loss), "bilevel problem: no validation loss");
  require(horizon >= 1, "bilevel problem: the horizon T must be >= 1 inner step, got " + std::to_string(horizon));
  require(w0.defined() && w0.ndim() == 1 && (w0.dtype() == DType::f32 || w0.dtype() == DType::f64),
          "bilevel problem: w0 must be a float32 or float64 vector");
  require(first_non_finite(w0) < 0, "bilevel problem: w0[" + std::to_string(first_non_finite(w0)) + "] is not finite");
  optimizer.validate();
  for (const HyperGroup& g : hyper.groups()) {
    if (g.spread == Spread::entry && is_optimizer_defining(g.kind))
      require(g.width == w0.numel(), "hyperparameter group '" + g.name + "' has " + std::to_string(g.width) +
                                         " entries per block for " + std::to_string(w0.numel()) + " parameters");
    if (g.spread == Spread::tensor_group)
      require(layout != nullptr && static_cast<int>(g.tensor_group.size()) == layout->size(),
              "hyperparameter group '" + g.name + "' is per parameter tensor: the problem needs the model's layout");
    if (g.spread == Spread::entry && !g.tensor_group.empty()) {
      require(layout != nullptr && static_cast<int>(g.tensor_group.size()) == layout->size(),
              "hyperparameter group '" + g.name + "' is per entry of chosen tensors: the problem needs the model's layout");
      std::int64_t chosen = 0;
      for (int k = 0; k < layout->size(); ++k)
        if (g.tensor_group[static_cast<std::size_t>(k)] >= 0) chosen += (*layout)[k].numel();
      require(g.width == chosen, "hyperparameter group '" + g.name + "' has " + std::to_string(g.width) +
                                     " entries for the " + std::to_string(chosen) + " entries of its chosen tensors");
    }
    if (g.kind == HyperKind::momentum || g.kind == HyperKind::learning_rate || g.kind == HyperKind::weight_decay)
      require(hyper.find(g.kind) == hyper.find(g.name), "two hyperparameter groups of kind " + std::string(kind_name(g.kind)));
    require(g.blocks <= horizon, "hyperparameter group '" + g.name + "' has " + std::to_string(g.blocks) +
                                     " blocks for " + std::to_string(horizon) + " steps (at most one block per step)");
  }
  require(!std::isnan(loss_bound), "bilevel problem: the loss bound is NaN");
}

Unroll::Unroll(const BilevelProblem& problem, const Tensor& theta) : p_(&problem) {
  problem.validate();
  problem.hyper.check_theta(theta, "hypergradient");
  // θ lives where w does (a GPU problem records λ(θ) on the same device as its weights); the
  // methods hand hyperparameter-sized results back on the host, where the caller's θ is.
  theta_ = theta.to(problem.dtype()).reshape(Shape{problem.hyper.size()}).to(problem.w0.device());
  for (int g = 0; g < static_cast<int>(problem.hyper.count()); ++g)
    if (!is_optimizer_defining(problem.hyper.group(g).kind)) unread_.push_back(g);
}

namespace {

/// Marks in `read` the groups of h whose slice of θ (a leaf of `tape`) reaches `loss`: a walk
/// back from the loss node over the tape's inputs (structure only, whatever the values).
void mark_reads(const Tape& tape, const Var& loss, const Var& theta, const Hyperparameters& h, std::vector<char>& read) {
  const std::int32_t theta_id = theta.id();
  if (loss.id() <= theta_id) return;  // recorded before θ: cannot depend on it
  std::vector<char> live(static_cast<std::size_t>(loss.id()) + 1, 0);
  live.back() = 1;
  for (std::int32_t id = loss.id(); id > theta_id; --id) {
    if (!live[static_cast<std::size_t>(id)]) continue;
    const Node& n = tape.node_at(id);
    for (int i = 0; i < n.num_inputs; ++i) {
      const std::int32_t in = tape.input_id(n, i);
      live[static_cast<std::size_t>(in)] = 1;
      if (in != theta_id) continue;
      if (n.rules != nullptr && n.rules->slices_input && i == 0 && n.value.numel() > 0) {
        const std::int64_t start = n.payload_as<SlicePayload>().start;
        const int first = h.group_of(start), last = h.group_of(start + n.value.numel() - 1);
        for (int g = first; g <= last; ++g) read[static_cast<std::size_t>(g)] = 1;
      } else {
        read.assign(read.size(), 1);  // θ read whole by some op: every group reaches the loss
      }
    }
  }
}

}  // namespace

// A loss-defining group whose values reach neither loss gets a hypergradient of exactly zero
// from every method, which looks like an answer (a classification task that looked its L2
// group up by the name "l2" did this to a group named otherwise). So each recorded training
// loss is walked back over the tape (mark_reads), and a group counts as read when a slice of θ
// that overlaps it reaches the loss. Groups read at the first recorded step (the usual case)
// end the check there: afterwards it costs one test of an empty vector per loss. A group the
// training loss does not read there is looked for once in L_val (recorded on a tape of its
// own): a group only L_val reads has its direct term ∂_θ L_val (a user's value that black-box
// search tunes against a validation objective). Any other group still unread once every step
// of the horizon has been recorded is an error naming it. The example weights of examples that
// no batch draws are legitimately unread: the group as a whole is read.
void Unroll::check_reads(const Tape& tape_of_rec, const Recorded& rec, const Tensor& w, std::int64_t t) {
  const Hyperparameters& h = p_->hyper;
  std::vector<char> read(h.count(), 0);
  mark_reads(tape_of_rec, rec.loss, rec.theta, h, read);
  if (!val_reads_checked_ && std::any_of(unread_.begin(), unread_.end(), [&](int g) { return !read[static_cast<std::size_t>(g)]; })) {
    val_reads_checked_ = true;
    Tape tape;
    const Var W = tape.variable(w), Th = tape.variable(theta_);
    const Var L = p_->val_loss(W, HyperValues(h, Th, p_->horizon, p_->horizon));
    mark_reads(tape, L, Th, h, read);
  }
  std::erase_if(unread_, [&](int g) { return read[static_cast<std::size_t>(g)] != 0; });
  if (unread_.empty()) {
    steps_recorded_.clear();
    return;
  }
  const std::int64_t T = p_->horizon;
  if (steps_recorded_.empty()) steps_recorded_.assign(static_cast<std::size_t>(T), 0);
  if (t >= 0 && t < T && !steps_recorded_[static_cast<std::size_t>(t)]) {
    steps_recorded_[static_cast<std::size_t>(t)] = 1;
    ++distinct_steps_;
  }
  if (distinct_steps_ < T) return;
  const HyperGroup& g = h.group(unread_.front());
  std::string others;
  for (std::size_t i = 1; i < unread_.size(); ++i) others += (others.empty() ? "'" : ", '") + h.group(unread_[i]).name + "'";
  throw Error("hyperparameter group '" + g.name + "' (" + kind_name(g.kind) + ") is never read: no entry of it " +
              "reaches the training loss at any of the " + std::to_string(T) + " steps, nor the validation loss, " +
              "so its hypergradient would be exactly zero. A loss reads its groups through HyperValues (h[\"" +
              g.name + "\"], h.first(kind), h.group(index)) and must use the value it reads" +
              (others.empty() ? std::string() : "; also never read: " + others));
}

int Unroll::state_parts() const { return p_->optimizer.kind == nn::OptimizerKind::sgd ? 2 : 3; }

InnerState Unroll::initial_state() const {
  InnerState s;
  s.parts.push_back(p_->w0.clone());
  for (int i = 1; i < state_parts(); ++i) s.parts.push_back(Tensor::zeros(p_->w0.shape(), p_->dtype(), device()));
  return s;
}

void Unroll::set_theta_columns(const Shard& columns) {
  const std::int64_t N = p_->hyper.size();
  require(columns.begin >= 0 && columns.begin < columns.end && columns.end <= N,
          "forward mode: columns [" + std::to_string(columns.begin) + ", " + std::to_string(columns.end) +
              ") of " + std::to_string(N) + " hyperparameters (expected a non-empty block inside [0, N))");
  columns_ = columns;
  identity_ = Tensor();
}

Shard Unroll::theta_columns() const {
  return columns_.end > 0 ? columns_ : Shard{0, p_->hyper.size()};
}

const Tensor& Unroll::theta_identity() {
  const std::int64_t N = p_->hyper.size();
  const Shard c = theta_columns();
  if (!identity_.defined() && N > 0) {
    // Rows begin..end-1 of the identity: row k seeds the direction of θ's entry begin + k.
    std::vector<double> eye(static_cast<std::size_t>(c.size() * N), 0.0);
    for (std::int64_t k = 0; k < c.size(); ++k) eye[static_cast<std::size_t>(k * N + c.begin + k)] = 1.0;
    identity_ = Tensor::from(eye, Shape{c.size(), N}, p_->dtype()).to(device());
  }
  return identity_;
}

void Unroll::check_finite_loss(double loss, const Tensor& g, std::int64_t t) const {
  std::ostringstream m;
  double value = loss;
  if (!std::isfinite(loss)) {
    m << "inner training diverged at step " << t << ": the training loss is " << loss;
  } else if (loss > p_->loss_bound) {
    m << "inner training diverged at step " << t << ": the training loss " << loss << " exceeds the bound "
      << p_->loss_bound;
  } else if (const std::int64_t i = g.defined() ? first_non_finite(g) : -1; i >= 0) {
    value = g.at(i);
    m << "inner training diverged at step " << t << ": gradient entry " << i << " is " << value;
  } else {
    return;
  }
  throw InnerDivergence(m.str(), t, value);
}

// Where a step's value or derivative stops being finite at parameter i and the optimizer is
// Adam with v̂_i at or near zero (√v̂ ≤ ε, where ε's placement matters), the cause is Adam's
// denominator: 0/0 when ε = 0, or the derivative of √v (unbounded as v → 0) in PyTorch's form.
// The message then names it and the option; otherwise it is empty.
std::string Unroll::adam_cause(const Tensor& v_next, std::int64_t i, std::int64_t t) const {
  const nn::OptimizerConfig& c = p_->optimizer;
  if (c.kind != nn::OptimizerKind::adam || i < 0 || !v_next.defined() || i >= v_next.numel()) return {};
  const double v = v_next.at(i);
  const double bc2 = 1 - nn::formula::power(c.beta2, t + 1);
  const double root = std::sqrt(v / bc2);
  // Near zero: where ε dominates the denominator, or below √(smallest normal number), where
  // 1/(2√v) and 1/(√v̂ + ε)² overflow whatever ε is.
  const double tiny = std::sqrt(p_->dtype() == DType::f32 ? static_cast<double>(std::numeric_limits<float>::min())
                                                          : std::numeric_limits<double>::min());
  if (!(root <= c.eps || root < tiny)) return {};
  const double denominator = c.eps_inside_sqrt ? std::sqrt(v / bc2 + c.eps * c.eps) : root + c.eps;
  std::ostringstream m;
  m << "; the cause is Adam's denominator at parameter " << i << ": v = " << v << ", so "
    << (c.eps_inside_sqrt ? "sqrt(v_hat + eps^2)" : "sqrt(v_hat) + eps") << " = " << denominator << " with eps = " << c.eps;
  if (denominator == 0) {
    m << ": the step divides 0 by 0 (v and m are 0 where the gradient has been 0); eps > 0 avoids it (the "
         "optimizer option eps, placed inside the square root or not: eps_inside_sqrt)";
  } else if (c.eps_inside_sqrt) {
    m << " (eps inside the square root); a larger eps bounds the step and its derivative";
  } else {
    m << ". PyTorch's form divides by sqrt(v_hat) + eps and differentiates sqrt(v), whose derivative 1/(2 sqrt(v)) "
         "is unbounded as v -> 0: a larger eps, or eps inside the square root (the optimizer option "
         "eps_inside_sqrt, sqrt(v_hat + eps^2), smooth at v = 0), avoids it";
  }
  return m.str();
}

void Unroll::check_finite_step(const Tensor& x, const Tensor& v_next, std::int64_t t, const char* what,
                               const std::vector<Tensor>& inputs) const {
  const std::int64_t i = first_non_finite(x);
  if (i < 0) return;
  const std::int64_t P = p_->num_params(), k = i % P;
  std::ostringstream m;
  m << "inner training diverged at step " << t << ": " << what << " " << k << " became " << x.at(i);
  // The step is the cause only when what came into it was finite (looked at only here, on the
  // way out).
  const bool inputs_finite =
      std::none_of(inputs.begin(), inputs.end(), [](const Tensor& in) { return in.defined() && first_non_finite(in) >= 0; });
  if (inputs_finite) {
    m << adam_cause(v_next, k, t);
  } else {
    m << " (what came into the step was already not finite)";
  }
  throw InnerDivergence(m.str(), t, x.at(i));
}

Unroll::Recorded Unroll::record_loss(Tape& tape, const Tensor& w, std::int64_t t) {
  tape.reset();
  tape.set_shard_sum(p_->sum_batch_statistics);  // synchronized batch norm, when data-parallel asks for it
  Recorded rec;
  rec.w = tape.variable(w);
  rec.theta = tape.variable(theta_);
  rec.loss = p_->train_loss(rec.w, HyperValues(p_->hyper, rec.theta, t, p_->horizon), t);
  require(rec.loss.numel() == 1, "the training loss must be a scalar, got shape " + rec.loss.shape().str());
  if (check_reads_ && !unread_.empty()) check_reads(tape, rec, w, t);
  return rec;
}

std::size_t Unroll::tape_bytes(const Tape& tape, const Tensor& w) const {
  std::vector<Tensor> seen;  // handles: each storage is counted once
  auto among = [](const Tensor& v, const std::vector<Tensor>& list) {
    return std::any_of(list.begin(), list.end(), [&](const Tensor& o) { return v.shares_storage_with(o); });
  };
  std::size_t bytes = 0;
  for (std::size_t id = 0; id < tape.size(); ++id) {
    const Tensor& v = tape.node_at(static_cast<std::int32_t>(id)).value;
    if (!v.defined() || v.shares_storage_with(w) || among(v, shared_leaves_) || among(v, seen)) continue;
    seen.push_back(v);
    bytes += v.nbytes();
  }
  return bytes;
}

void Unroll::find_shared_leaves(const Tensor& w, std::int64_t t) {
  if (shared_leaves_found_) return;
  // Two recordings of the same step: a leaf whose storage both hold is held outside them (the
  // data set of a full batch, θ); a mini-batch is gathered afresh by each, so the kept pass that
  // gathered it pays for it. (Asking the storage for its use count cannot tell these apart: the
  // tape's own nodes save their operands, which counts as a second holder.)
  Tape first, second;
  record_loss(first, w, t);
  record_loss(second, w, t);
  for (std::size_t i = 0; i < first.size(); ++i) {
    const Node& a = first.node_at(static_cast<std::int32_t>(i));
    if (a.num_inputs != 0 || !a.value.defined()) continue;
    for (std::size_t j = 0; j < second.size(); ++j) {
      const Node& b = second.node_at(static_cast<std::int32_t>(j));
      if (b.num_inputs == 0 && b.value.defined() && a.value.shares_storage_with(b.value)) {
        shared_leaves_.push_back(a.value);
        break;
      }
    }
  }
  shared_leaves_found_ = true;
}

std::size_t Unroll::pass_bytes(const Tensor& w, std::int64_t t) {
  find_shared_leaves(w, t);
  Tape tape;
  const Recorded rec = record_loss(tape, w, t);
  return tape_bytes(tape, w);
}

Tensor Unroll::reverse_pass(const Tensor& w, std::int64_t t, bool wrt_theta, double* loss) {
  const bool keep = !wrt_theta && keep_.count(t) > 0;
  KeptPass kept;
  if (keep) kept.tape = std::make_unique<Tape>();
  Tape& tape = keep ? *kept.tape : loss_tape_;
  const Recorded rec = record_loss(tape, w, t);
  const Var& leaf = wrt_theta ? rec.theta : rec.w;
  Request r;
  r.output = rec.loss;
  r.gradients = {leaf};
  tape.differentiate(r);
  ++counts.gradients;
  double value = rec.loss.item();
  const Tensor g = tape.adjoint(leaf).value;
  Tensor out = g.defined() ? g.reshape(leaf.shape()) : Tensor::zeros(leaf.shape(), leaf.dtype(), device());
  if (keep) {
    tape.release_sweep();  // the adjoints go; the recorded values stay for the backward sweep
    keep_.erase(t);
    kept.rec = rec;
    kept.w = w;
    find_shared_leaves(w, t);
    kept.bytes = tape_bytes(tape, w);
    kept_bytes_ += kept.bytes;
    kept_peak_ = std::max(kept_peak_, kept_bytes_);
    kept_.insert_or_assign(t, std::move(kept));
  }
  sum_over_shards(value, {&out});
  if (loss) *loss = value;
  return out;
}

void Unroll::sum_over_shards(double& loss, std::initializer_list<Tensor*> parts) const {
  if (!p_->sum_over_shards) return;
  Tensor l = Tensor::from({loss}, Shape{}, DType::f64);
  std::vector<Tensor*> all{&l};
  for (Tensor* t : parts)
    if (t && t->defined()) all.push_back(t);
  p_->sum_over_shards(all);
  loss = l.item();
}

LossPass Unroll::gradient(const Tensor& w, std::int64_t t) {
  LossPass out;
  out.grad = reverse_pass(w, t, /*wrt_theta=*/false, &out.loss);
  check_finite_loss(out.loss, out.grad, t);
  return out;
}

Tensor Unroll::theta_gradient(const Tensor& w, std::int64_t t) { return reverse_pass(w, t, /*wrt_theta=*/true, nullptr); }

LossPass Unroll::loss_pass(const Tensor& w, std::int64_t t, const Tensor& w_dirs, const Tensor& theta_dirs,
                           bool theta_adjoint, bool want_grad) {
  if (!w_dirs.defined() && !theta_dirs.defined()) return gradient(w, t);
  // A kept pass of step t at the same w: its recorded values serve; otherwise record afresh.
  KeptPass kept;
  if (const auto it = kept_.find(t); it != kept_.end()) {
    kept_bytes_ -= it->second.bytes;
    if (it->second.w.shares_storage_with(w) || same_bits(it->second.w, w)) kept = std::move(it->second);
    kept_.erase(it);
  }
  Tape& tape = kept.tape ? *kept.tape : loss_tape_;
  const auto [W, Th, L] = kept.tape ? kept.rec : record_loss(w, t);
  Request r;
  r.output = L;
  if (w_dirs.defined()) r.tangents.push_back({W, w_dirs});
  if (theta_dirs.defined()) r.tangents.push_back({Th, theta_dirs});
  if (want_grad) r.gradients = {W};
  r.adjoint_tangents = {W};
  if (theta_adjoint) {
    r.gradients.push_back(Th);
    r.adjoint_tangents.push_back(Th);
  }
  tape.differentiate(r);
  ++counts.fwd_over_rev;
  const std::int64_t K = tape.directions();
  const Dual gw = tape.adjoint(W);
  LossPass out;
  out.loss = L.item();
  if (want_grad) out.grad = gw.value.defined() ? gw.value : Tensor::zeros(w.shape(), w.dtype(), w.device());
  const bool one_d = w_dirs.defined() && w_dirs.ndim() == 1;
  const Shape wt = one_d ? w.shape() : Shape{K, w.numel()};
  out.grad_tangent = gw.tangent.defined() ? gw.tangent.reshape(wt) : Tensor::zeros(wt, w.dtype(), w.device());
  if (theta_adjoint) {
    const Dual gt = tape.adjoint(Th);
    const Shape tt = one_d ? theta_.shape() : Shape{K, theta_.numel()};
    out.theta_tangent = gt.tangent.defined() ? gt.tangent.reshape(tt) : Tensor::zeros(tt, w.dtype(), w.device());
  }
  sum_over_shards(out.loss, {&out.grad, &out.grad_tangent, &out.theta_tangent});
  check_finite_loss(out.loss, out.grad, t);
  if (const std::int64_t i = first_non_finite(out.grad_tangent); i >= 0)
    throw InnerDivergence("at step " + std::to_string(t) + " the Hessian product has a non-finite entry (" +
                              std::to_string(out.grad_tangent.at(i)) + " at " + std::to_string(i) + ")",
                          t, out.grad_tangent.at(i));
  return out;
}

Var Unroll::optimizer_value(Tape& tape, const Var& theta, HyperKind kind, double fixed, std::int64_t t) {
  const int g = p_->hyper.find(kind);
  if (g < 0) return tape.constant(Tensor::full(Shape{}, fixed, p_->dtype(), device()));
  return p_->hyper.per_parameter(theta, g, t, p_->horizon, p_->layout, p_->num_params());
}

std::vector<Var> Unroll::record_step(Tape& tape, const std::vector<Var>& s, const Var& g, const Var& theta,
                                     std::int64_t t) {
  const nn::OptimizerConfig& c = p_->optimizer;
  const Var lr = optimizer_value(tape, theta, HyperKind::learning_rate, c.lr.at(t), t);
  const Var wd = optimizer_value(tape, theta, HyperKind::weight_decay, c.weight_decay, t);
  if (c.kind == nn::OptimizerKind::sgd) {
    const Var mom = optimizer_value(tape, theta, HyperKind::momentum, c.momentum, t);
    const nn::SgdVarState next = nn::sgd_step({s[0], s[1]}, g, {lr, mom, wd});
    return {next.w, next.v};
  }
  const Var b1 = optimizer_value(tape, theta, HyperKind::momentum, c.beta1, t);
  const DType d = p_->dtype();
  nn::AdamVars h{lr, b1, tape.constant(Tensor::full(Shape{}, c.beta2, d, device())),
                 tape.constant(Tensor::full(Shape{}, c.eps, d, device())), wd,
                 c.decoupled, c.eps_inside_sqrt};
  const nn::AdamVarState next = nn::adam_step({s[0], s[1], s[2], t}, g, h);
  return {next.w, next.m, next.v};
}

// The optimizer's formula in one pass (kernels/optim_step.h), with the bits of the ops the tape
// would run; the hyperparameters' values (λ(θ) at step t) still come from the tape (plain mode).
// False, with the tape reset, where the kernels do not take the operands.
bool Unroll::fused_step(const InnerState& s, const Tensor& g, std::int64_t t, InnerState& out) {
  Tape& tape = step_tape_;
  const nn::OptimizerConfig& c = p_->optimizer;
  const Var th = tape.variable(theta_);
  auto value = [&](HyperKind kind, double fixed) { return optimizer_value(tape, th, kind, fixed, t).value(); };
  bool done = false;
  if (c.kind == nn::OptimizerKind::sgd) {
    const Tensor lr = value(HyperKind::learning_rate, c.lr.at(t)), mom = value(HyperKind::momentum, c.momentum),
                 wd = value(HyperKind::weight_decay, c.weight_decay);
    if ((done = kernels::sgd_step_applies(s.w(), lr, mom, wd))) {
      out.parts.assign(2, Tensor());
      kernels::sgd_step_into(s.parts[0], s.parts[1], g, lr, mom, wd, out.parts[0], out.parts[1]);
    }
  } else {
    kernels::AdamStepHyper h;
    h.lr = value(HyperKind::learning_rate, c.lr.at(t));
    h.beta1 = value(HyperKind::momentum, c.beta1);
    h.beta2 = Tensor::full(Shape{}, c.beta2, p_->dtype(), device());
    h.eps = Tensor::full(Shape{}, c.eps, p_->dtype(), device());
    h.weight_decay = value(HyperKind::weight_decay, c.weight_decay);
    h.decoupled = c.decoupled;
    h.eps_inside_sqrt = c.eps_inside_sqrt;
    if ((done = kernels::adam_step_applies(s.w(), h))) {
      out.parts.assign(3, Tensor());
      kernels::adam_step_into(s.parts[0], s.parts[1], s.parts[2], g, h, t + 1, out.parts[0], out.parts[1], out.parts[2]);
    }
  }
  if (!done) tape.reset();
  return done;
}

InnerState Unroll::step(const InnerState& s, const Tensor& g, std::int64_t t) {
  Tape& tape = step_tape_;
  tape.reset();
  tape.set_recording(false);
  InnerState out;
  if (!fused_step(s, g, t, out)) {
    std::vector<Var> vs;
    for (const Tensor& part : s.parts) vs.push_back(tape.variable(part));
    const std::vector<Var> next = record_step(tape, vs, tape.variable(g), tape.variable(theta_), t);
    for (const Var& v : next) out.parts.push_back(v.value());
  }
  tape.set_recording(true);
  ++counts.steps;
  check_finite_step(out.w(), adam_v(out), t, "weight");
  return out;
}

StepVjp Unroll::step_vjp(const InnerState& s, const Tensor& g, std::int64_t t, const InnerState& adj_next, bool g_only) {
  Tape& tape = step_tape_;
  tape.reset();
  std::vector<Var> vs;
  for (const Tensor& part : s.parts) vs.push_back(tape.variable(part));
  const Var G = tape.variable(g);
  const Var Th = tape.variable(theta_);
  const std::vector<Var> next = record_step(tape, vs, G, Th, t);
  Request r;
  for (std::size_t i = 0; i < next.size(); ++i) r.output_adjoints.emplace_back(next[i], adj_next.parts.at(i));
  if (!g_only) r.gradients = vs;
  r.gradients.push_back(G);
  if (theta_.numel() > 0 && !g_only) r.gradients.push_back(Th);
  tape.differentiate(r);
  ++counts.steps;
  auto adjoint_or_zero = [&](const Var& v) {
    Tensor a = tape.adjoint(v).value;
    return a.defined() ? a.reshape(v.shape()) : Tensor::zeros(v.shape(), v.dtype(), device());
  };
  StepVjp res;
  res.adj_g = adjoint_or_zero(G);
  if (!g_only) {
    for (const Var& v : vs) res.adj_state.parts.push_back(adjoint_or_zero(v));
    res.adj_theta = adjoint_or_zero(Th);
  }
  // Adam's step can make a non-finite adjoint from finite ones (its denominator near v = 0);
  // every part of S̄_t reaches ḡ_t within the step, so ḡ_t is the one to look at. SGD's step is
  // affine in (S, g): nothing to check.
  if (p_->optimizer.kind == nn::OptimizerKind::adam)
    check_finite_step(res.adj_g, next.size() > 2 ? next[2].value() : Tensor(), t, "the step's adjoint dPhi/dg of parameter",
                      adj_next.parts);
  return res;
}

StepJvp Unroll::step_jvp(const InnerState& s, const std::vector<Tensor>& s_dirs, const Tensor& g, const Tensor& g_dirs,
                         std::int64_t t) {
  Tape& tape = step_tape_;
  tape.reset();
  std::vector<Var> vs;
  for (const Tensor& part : s.parts) vs.push_back(tape.variable(part));
  const Var G = tape.variable(g);
  const Var Th = tape.variable(theta_);
  const std::vector<Var> next = record_step(tape, vs, G, Th, t);
  const Var out = concat(next);
  Request r;
  r.output = out;
  r.output_tangent = true;
  for (std::size_t i = 0; i < vs.size(); ++i)
    if (i < s_dirs.size() && s_dirs[i].defined()) r.tangents.push_back({vs[i], s_dirs[i]});
  if (g_dirs.defined()) r.tangents.push_back({G, g_dirs});
  const std::int64_t N = theta_.numel();
  if (N > 0) r.tangents.push_back({Th, theta_identity()});
  StepJvp res;
  for (const Var& v : next) res.next.parts.push_back(v.value());
  if (r.tangents.empty()) {
    res.tangents.assign(next.size(), Tensor());
    return res;
  }
  tape.differentiate(r);
  ++counts.steps;
  for (const Var& v : next) {
    Tensor tan = tape.tangent(v);
    res.tangents.push_back(tan.defined() ? tan.reshape(Shape{tape.directions(), v.numel()}) : Tensor());
  }
  check_finite_step(res.next.w(), adam_v(res.next), t, "weight");
  if (p_->optimizer.kind == nn::OptimizerKind::adam && res.tangents[0].defined() &&
      first_non_finite(res.tangents[0]) >= 0) {  // the inputs are gathered on the way out only
    std::vector<Tensor> in = s_dirs;
    in.push_back(g_dirs);
    check_finite_step(res.tangents[0], adam_v(res.next), t, "the tangent dw/dtheta of weight", in);
  }
  return res;
}

Unroll::ValPass Unroll::validation(const Tensor& w) {
  Tape& tape = loss_tape_;
  tape.reset();
  tape.set_shard_sum({});  // every process holds the whole validation set
  const Var W = tape.variable(w);
  const Var Th = tape.variable(theta_);
  const Var L = p_->val_loss(W, HyperValues(p_->hyper, Th, p_->horizon, p_->horizon));
  require(L.numel() == 1, "the validation loss must be a scalar, got shape " + L.shape().str());
  Request r;
  r.output = L;
  r.gradients = {W};
  if (theta_.numel() > 0) r.gradients.push_back(Th);
  tape.differentiate(r);
  ++counts.gradients;
  ValPass out;
  out.loss = L.item();
  require(std::isfinite(out.loss), "the validation loss at the end of training is " + std::to_string(out.loss));
  const Tensor gw = tape.adjoint(W).value, gt = tape.adjoint(Th).value;
  out.grad_w = gw.defined() ? gw : Tensor::zeros(w.shape(), w.dtype(), device());
  out.grad_theta = gt.defined() ? gt.reshape(theta_.shape()) : Tensor::zeros(theta_.shape(), theta_.dtype(), device());
  return out;
}

Unroll::OptimizerValues Unroll::optimizer_values(std::int64_t t) {
  Tape& tape = step_tape_;
  tape.reset();
  tape.set_recording(false);
  const Var Th = tape.variable(theta_);
  const nn::OptimizerConfig& c = p_->optimizer;
  OptimizerValues v;
  v.lr = optimizer_value(tape, Th, HyperKind::learning_rate, c.lr.at(t), t).value();
  v.momentum = optimizer_value(tape, Th, HyperKind::momentum,
                               c.kind == nn::OptimizerKind::sgd ? c.momentum : c.beta1, t).value();
  v.weight_decay = optimizer_value(tape, Th, HyperKind::weight_decay, c.weight_decay, t).value();
  tape.set_recording(true);
  return v;
}

}  // namespace gradhpo::hpo
