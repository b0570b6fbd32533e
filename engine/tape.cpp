#include "tape.h"

#include <algorithm>

#include <string>

#include "dual_math.h"
#include "kernels/math.h"

namespace gradhpo {
namespace {
// A function-local static: registration runs during static initialisation of other files.
std::vector<const OpRules*>& mutable_registry() {
  static std::vector<const OpRules*> ops;
  return ops;
}
}  // namespace

const std::vector<const OpRules*>& registered_ops() { return mutable_registry(); }

bool register_ops(std::initializer_list<const OpRules*> rules) {
  mutable_registry().insert(mutable_registry().end(), rules.begin(), rules.end());
  return true;
}

Tape& Var::tape() const {
  GRADHPO_CHECK(tape_ != nullptr, "Var: used before it was assigned a value");
  return *tape_;
}

const Tensor& Var::value() const {
  if (id_ == kPlain) {
    tape().check(*this, "Var");
    return held_;
  }
  return tape().node(*this).value;
}

void Tape::check(const Var& v, const char* op) const {
  GRADHPO_CHECK(v.tape_ != nullptr, std::string(op) + ": a Var that holds no value (default-constructed)");
  GRADHPO_CHECK(v.tape_ == this, std::string(op) + ": operands are recorded on different tapes");
  GRADHPO_CHECK(v.generation_ == generation_ && (v.id_ == Var::kPlain || (v.id_ >= 0 && static_cast<std::size_t>(v.id_) < nodes_.size())),
                std::string(op) + ": a Var from a tape that has been reset since it was recorded");
  GRADHPO_CHECK((v.id_ == Var::kPlain) == !recording_,
                std::string(op) + (recording_ ? ": a Var computed in plain mode (set_recording(false)) used while recording"
                                              : ": a recorded Var used in plain mode"));
}

Node& Tape::node(const Var& v) {
  check(v, "Var");
  if (v.id_ == Var::kPlain) return scratch_;
  return nodes_[static_cast<std::size_t>(v.id_)];
}

const Node& Tape::node(const Var& v) const {
  check(v, "Var");
  if (v.id_ == Var::kPlain) return scratch_;
  return nodes_[static_cast<std::size_t>(v.id_)];
}

Var Tape::add_node(Node&& n) {
  if (!recording_) {
    // Plain mode: the Var keeps the value; the node's other fields (its payload) land in the
    // scratch slot, where they are dropped at the next op.
    Tensor value = std::move(n.value);
    scratch_ = std::move(n);
    return Var(this, std::move(value), generation_);
  }
  nodes_.push_back(std::move(n));
  return Var(this, static_cast<std::int32_t>(nodes_.size() - 1), generation_);
}

Var Tape::variable(const Tensor& value) {
  GRADHPO_CHECK(value.defined(), "Tape::variable: undefined tensor");
  GRADHPO_CHECK(value.dtype() != DType::i32, "Tape::variable: a variable must be float32 or float64");
  Node n;
  n.value = value;
  n.is_variable = true;
  return add_node(std::move(n));
}

Var Tape::constant(const Tensor& value) {
  GRADHPO_CHECK(value.defined(), "Tape::constant: undefined tensor");
  Node n;
  n.value = value;
  return add_node(std::move(n));
}

Var Tape::record(const OpRules* rules, Tensor value, std::initializer_list<Var> inputs, NodePayload payload) {
  return record(rules, std::move(value), inputs.begin(), inputs.size(), std::move(payload));
}

Var Tape::record(const OpRules* rules, Tensor value, const std::vector<Var>& inputs, NodePayload payload) {
  return record(rules, std::move(value), inputs.data(), inputs.size(), std::move(payload));
}

Var Tape::record(const OpRules* rules, Tensor value, const Var* inputs, std::size_t count, NodePayload&& payload) {
  Node n;
  n.rules = rules;
  n.value = std::move(value);
  n.payload = std::move(payload);
  n.first_input = static_cast<std::int32_t>(inputs_.size());
  n.num_inputs = recording_ ? static_cast<std::int32_t>(count) : 0;
  for (std::size_t i = 0; i < count; ++i) {
    check(inputs[i], rules->name);
    if (recording_) inputs_.push_back(inputs[i].id_);
  }
  return add_node(std::move(n));
}

void Tape::reset() {
  nodes_.clear();
  inputs_.clear();
  ++generation_;
  K_ = 0;
}

// The `reads` contract: inside a backward rule that runs with tangents, every Dual read must be
// declared, or the sweep may not have computed that tangent (it would read as zero).
// `input` is the input's index, or -1 for the output.
void Tape::check_declared_read(const Node& n, int input) const {
  GRADHPO_CHECK(&n != in_backward_ || (input < 0 ? (n.rules->reads & kReadsOutput) != 0 : declares_input(n.rules->reads, input)),
                std::string(n.rules->name) + " backward: reads its " +
                    (input < 0 ? std::string("output") : "input " + std::to_string(input)) +
                    " as a dual, but its `reads` mask does not declare it (that tangent may not have been computed)");
}

Dual Tape::input(const Node& n, int i) const {
  const Node& in = node_at(input_id(n, i));
  if (strip_tangents_) return Dual(in.value);
  check_declared_read(n, i);
  return Dual(in.value, in.tangent);
}

Dual Tape::output(const Node& n) const {
  if (strip_tangents_) return Dual(n.value);
  check_declared_read(n, -1);
  return Dual(n.value, n.tangent);
}

Dual& Tape::adjoint_slot(std::int32_t id) { return nodes_[static_cast<std::size_t>(id)].adjoint; }


void Tape::accumulate(const Node& n, int i, Dual c) {
  const std::int32_t id = input_id(n, i);
  const Node& target = node_at(id);
  if (!target.on_gradient_path) return;
  if (target.rules && target.rules->slices_input && written_in_source(target, c)) return;
  GRADHPO_CHECK(c.value.numel() == target.value.numel(),
          std::string(n.rules->name) + " backward: contribution of shape " + c.value.shape().str() +
              " for an input of shape " + target.value.shape().str());
  finish_adjoint(id);
  Dual& slot = adjoint_slot(id);
  if (c.value.shape() != target.value.shape()) c.value = c.value.reshape(target.value.shape());
  // A first contribution is kept as it is, even when its storage is shared (an add passes the
  // same ḡ to both inputs): copied only if a second one must be added to it, and then not
  // copied-then-added but summed into a new tensor in one pass. Only a slot that owns its
  // storage alone is added to in place.
  auto add = [](Tensor& acc, Tensor part) {
    if (!acc.defined()) acc = std::move(part);
    else if (!acc.unique()) acc = kernels::binary(kernels::BinaryOp::add, acc, part);
    else kernels::axpy(acc, part);
  };
  add(slot.value, std::move(c.value));
  if (target.adjoint_tangent && c.has_tangent()) add(slot.tangent, std::move(c.tangent));
}

Tape::PartialAdjoint* Tape::partial_adjoint(std::int32_t id) {
  for (PartialAdjoint& p : partial_)
    if (p.id == id) return &p;
  return nullptr;
}

namespace {
using Ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;

bool overlaps(const Ranges& written, std::int64_t begin, std::int64_t end) {
  for (const auto& [b, e] : written)
    if (begin < e && b < end) return true;
  return false;
}

// Zeroes what `written` leaves out of each of the `rows` rows of `total` elements of acc.
void zero_unwritten(Tensor& acc, Ranges& written, std::int64_t total) {
  std::sort(written.begin(), written.end());
  const std::int64_t rows = acc.numel() / std::max<std::int64_t>(total, 1);
  for (std::int64_t k = 0; k < rows; ++k) {
    std::int64_t at = 0;
    for (const auto& [b, e] : written) {
      if (b > at) acc.flat_slice(k * total + at, b - at).fill(0.0);
      at = e;
    }
    if (at < total) acc.flat_slice(k * total + at, total - at).fill(0.0);
  }
  written.clear();
}
}  // namespace

void Tape::finish_adjoint(std::int32_t id) {
  PartialAdjoint* p = partial_adjoint(id);
  if (!p) return;
  Dual& slot = adjoint_slot(id);
  const std::int64_t total = node_at(id).value.numel();
  if (p->value_partial) zero_unwritten(slot.value, p->value, total);
  if (p->tangent_partial) zero_unwritten(slot.tangent, p->tangent, total);
  *p = partial_.back();
  partial_.pop_back();
}

Dual Tape::adjoint_destination(const Node& n, int i, std::int64_t K, std::vector<Tensor>* tangent_rows) {
  const Node& s = node_at(input_id(n, i));
  auto fresh = [&] {
    Dual d(Tensor::empty(s.value.shape(), s.value.dtype(), s.value.device()));
    if (K > 0) d.tangent = Tensor::empty(Shape{K, s.value.numel()}, s.value.dtype(), s.value.device());
    return d;
  };
  if (tangent_rows) tangent_rows->clear();
  if (!s.rules || !s.rules->slices_input || !s.on_gradient_path || s.adjoint.value.defined() || (K > 1 && !tangent_rows))
    return fresh();
  const std::int32_t src_id = input_id(s, 0);
  const Node& src = node_at(src_id);
  if (!src.on_gradient_path) return fresh();
  const std::int64_t start = s.payload_as<SlicePayload>().start, len = s.value.numel(), total = src.value.numel();
  const bool tangent_in_place = K > 0 && src.adjoint_tangent;  // else a tangent accumulate drops
  Dual& slot = adjoint_slot(src_id);
  PartialAdjoint* p = partial_adjoint(src_id);
  // Free: not allocated yet, or allocated by slices (partial) with nothing written in the range.
  auto free_range = [&](const Tensor& acc, bool PartialAdjoint::*partial, Ranges PartialAdjoint::*written) {
    return !acc.defined() || (p && p->*partial && !overlaps(p->*written, start, start + len));
  };
  if (!free_range(slot.value, &PartialAdjoint::value_partial, &PartialAdjoint::value) ||
      (tangent_in_place && !free_range(slot.tangent, &PartialAdjoint::tangent_partial, &PartialAdjoint::tangent)))
    return fresh();
  // The range counts as written from now on (the rule writes all of it before anything reads the slot).
  auto reserve = [&](Tensor& acc, const Shape& shape, bool PartialAdjoint::*partial, Ranges PartialAdjoint::*written) {
    if (!acc.defined()) {
      acc = Tensor::empty(shape, src.value.dtype(), src.value.device());
      if (!p) {
        partial_.push_back(PartialAdjoint{});
        partial_.back().id = src_id;
        p = &partial_.back();
      }
      p->*partial = true;
    }
    (p->*written).emplace_back(start, start + len);
    return acc.flat_slice(start, len);
  };
  Dual d(reserve(slot.value, src.value.shape(), &PartialAdjoint::value_partial, &PartialAdjoint::value).reshape(s.value.shape()));
  if (tangent_in_place) {
    // Reserved once for all K rows: the written ranges of a tangent slot hold in every row.
    reserve(slot.tangent, Shape{K, total}, &PartialAdjoint::tangent_partial, &PartialAdjoint::tangent);
    if (K == 1) {
      d.tangent = slot.tangent.flat_slice(start, len).reshape(Shape{1, len});
    } else {
      for (std::int64_t k = 0; k < K; ++k) tangent_rows->push_back(slot.tangent.flat_slice(k * total + start, len));
    }
  } else if (K > 0)
    d.tangent = Tensor::empty(Shape{K, len}, s.value.dtype(), s.value.device());
  return d;
}

bool Tape::written_in_source(const Node& s, const Dual& c) {
  const Node& src = node_at(input_id(s, 0));
  const std::int64_t start = s.payload_as<SlicePayload>().start;
  const std::size_t offset = static_cast<std::size_t>(start) * dtype_size(src.value.dtype());
  auto in_place = [&](const Tensor& acc, const Tensor& part) {
    return acc.defined() && part.defined() && acc.device() == part.device() &&
           static_cast<const char*>(part.raw()) == static_cast<const char*>(acc.raw()) + offset;
  };
  if (!in_place(src.adjoint.value, c.value)) return false;
  // Its tangent was written in place too: as K = 1 view, or row by row (then c has none).
  GRADHPO_CHECK(!c.has_tangent() || !src.adjoint_tangent || in_place(src.adjoint.tangent, c.tangent),
                std::string(s.rules->name) + ": an adjoint written in place without its tangent (internal error)");
  return true;
}

void Tape::accumulate_range(const Node& n, int i, std::int64_t start, const Dual& c) {
  const std::int32_t id = input_id(n, i);
  const Node& target = node_at(id);
  if (!target.on_gradient_path) return;
  Dual& slot = adjoint_slot(id);
  const std::int64_t total = target.value.numel(), len = c.value.numel();
  GRADHPO_CHECK(start >= 0 && start + len <= total, std::string(n.rules->name) + " backward: range [" +
                                                        std::to_string(start) + ", " + std::to_string(start + len) +
                                                        ") outside an input of " + std::to_string(total) + " elements");
  // A slot shared with another tensor (see accumulate) is made its own before a range is added.
  if (slot.value.defined() && !slot.value.unique()) slot.value = slot.value.clone();
  if (slot.tangent.defined() && !slot.tangent.unique()) slot.tangent = slot.tangent.clone();
  PartialAdjoint* p = partial_adjoint(id);
  // acc[k·total + start, + len) += part's row k, for the rows of part. A fresh slot is allocated
  // unzeroed and its written ranges tracked; a range no contribution has touched yet is copied
  // into; only overlapping contributions are added (after the slot is made whole).
  auto add_range = [&](Tensor& acc, const Tensor& part, std::int64_t rows, const Shape& shape, bool PartialAdjoint::*partial,
                       Ranges PartialAdjoint::*written) {
    if (!acc.defined()) {
      acc = Tensor::empty(shape, part.dtype(), part.device());
      if (!p) {
        partial_.push_back(PartialAdjoint{});
        partial_.back().id = id;
        p = &partial_.back();
      }
      p->*partial = true;
    }
    const bool copy = p && p->*partial && !overlaps(p->*written, start, start + len);
    if (p && p->*partial && !copy) {  // a second contribution to the same elements: make it whole
      zero_unwritten(acc, p->*written, total);
      p->*partial = false;
    }
    for (std::int64_t k = 0; k < rows; ++k) {
      Tensor dst = acc.flat_slice(k * total + start, len);
      const Tensor src = part.flat_slice(k * len, len);
      if (copy) dst.copy_from(src);
      else kernels::axpy(dst, src);
    }
    if (copy) (p->*written).emplace_back(start, start + len);
  };
  add_range(slot.value, c.value, 1, target.value.shape(), &PartialAdjoint::value_partial, &PartialAdjoint::value);
  if (target.adjoint_tangent && c.has_tangent())
    add_range(slot.tangent, c.tangent, c.K(), Shape{c.K(), total}, &PartialAdjoint::tangent_partial, &PartialAdjoint::tangent);
  if (p && !p->value_partial && !p->tangent_partial) finish_adjoint(id);
}

// Tape::differentiate runs its phases in this order, each a private step below. Activity
// analysis (steps 2-4) decides, before any arithmetic, which tangents and adjoints can reach a
// requested result, so the sweeps (5-6) skip the rest: a data batch costs no adjoint, and a
// mixed product whose λ enters only through a regulariser costs about one gradient.
void Tape::differentiate(const Request& req) {
  GRADHPO_CHECK(recording_, "differentiate: the tape is in plain mode (set_recording(false)): nothing was recorded");
  GRADHPO_CHECK(req.output_adjoints.empty() || (!req.output.valid() && !req.output_tangent),
                "differentiate: give either output or output_adjoints, not both");
  std::size_t count = 0;  // nodes after the (last) output don't matter
  if (req.output_adjoints.empty()) {
    check(req.output, "differentiate");
    count = static_cast<std::size_t>(req.output.id()) + 1;
  }
  for (const auto& [out, seed] : req.output_adjoints) {
    check(out, "differentiate (output_adjoints)");
    count = std::max(count, static_cast<std::size_t>(out.id()) + 1);
  }
  clear_sweep();                                // 1. forget the last sweep
  seed_tangents(req);                           // 2. the K directions, and the leaves asked for
  propagate_activity(count);                    // 3. what depends on a seed or a requested leaf
  mark_needed_tangents(req, count);             // 4. which of those tangents a result reads
  forward_tangents(count);                      // 5. forward mode over the needed tangents
  if (req.gradients.empty() && req.adjoint_tangents.empty()) return;
  seed_output_adjoint(req, count);              // 6. reverse (or forward-over-reverse) mode
  sweep_adjoints(count);
  collect_results(count);                       // 7. the leaves' adjoints, whole and owned
}

// Every node's sweep state from the previous call goes: its tangent, adjoint and activity flags,
// and the partially written adjoints' bookkeeping.
void Tape::clear_sweep() {
  strip_tangents_ = false;
  in_backward_ = nullptr;
  partial_.clear();
  for (Node& n : nodes_) {
    n.tangent = Tensor();
    n.adjoint = Dual();
    n.tangent_active = n.tangent_needed = n.on_gradient_path = n.adjoint_tangent = n.gradient_wanted = false;
  }
}

// The tangent seeds (K directions shared by every seeded leaf, checked against each leaf) and
// the leaves whose adjoint or adjoint tangent is requested: the sources of the activity analysis.
void Tape::seed_tangents(const Request& req) {
  K_ = 0;
  for (const auto& [leaf, dir] : req.tangents) {
    check(leaf, "differentiate (tangent seed)");
    Node& n = nodes_[static_cast<std::size_t>(leaf.id())];
    GRADHPO_CHECK(n.is_variable, "differentiate: a tangent can only be seeded on a variable, not on a constant or op result");
    GRADHPO_CHECK(dir.defined() && dir.dtype() == n.value.dtype(),
            std::string("differentiate: tangent seed must be ") + dtype_name(n.value.dtype()));
    const std::int64_t numel = n.value.numel();
    GRADHPO_CHECK(dir.numel() % std::max<std::int64_t>(numel, 1) == 0 && dir.numel() > 0,
            "differentiate: tangent seed of shape " + dir.shape().str() + " does not fit a variable of shape " +
                n.value.shape().str() + " (expected [K, " + std::to_string(numel) + "])");
    const std::int64_t K = dir.numel() / std::max<std::int64_t>(numel, 1);
    // A seed shaped like the variable is one direction (K = 1), whatever its rank; otherwise a
    // 2-D seed must be [K, numel].
    if (dir.ndim() == 2 && dir.shape() != n.value.shape())
      GRADHPO_CHECK(dir.dim(1) == numel, "differentiate: tangent seed of shape " + dir.shape().str() +
                                             " for a variable of " + std::to_string(numel) + " elements");
    GRADHPO_CHECK(K_ == 0 || K == K_, "differentiate: tangent seeds disagree on the number of directions: K = " +
                                    std::to_string(K_) + " and K = " + std::to_string(K));
    K_ = K;
    n.tangent = dir.reshape(Shape{K, numel});
    n.tangent_active = true;
  }
  auto mark = [&](const std::vector<Var>& leaves, bool Node::*flag, const char* what) {
    for (const Var& v : leaves) {
      check(v, what);
      Node& n = nodes_[static_cast<std::size_t>(v.id())];
      GRADHPO_CHECK(n.is_variable, std::string(what) + ": only a variable has an adjoint to ask for");
      n.*flag = true;
      n.on_gradient_path = true;
    }
  };
  mark(req.gradients, &Node::gradient_wanted, "differentiate (gradient)");
  mark(req.adjoint_tangents, &Node::adjoint_tangent, "differentiate (adjoint tangent)");
  GRADHPO_CHECK(req.adjoint_tangents.empty() || K_ > 0,
          "differentiate: an adjoint tangent was asked for but no tangent was seeded");
}

// Forward in creation order: a node is tangent-active, on the gradient path or adjoint-tangent
// when any input is. A node that is none of these gets no tangent and no adjoint below.
void Tape::propagate_activity(std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    Node& n = nodes_[i];
    for (int j = 0; j < n.num_inputs; ++j) {
      const Node& in = nodes_[static_cast<std::size_t>(input_id(n, j))];
      n.tangent_active |= in.tangent_active;
      n.on_gradient_path |= in.on_gradient_path;
      n.adjoint_tangent |= in.adjoint_tangent;
    }
  }
}

// Being active is not enough for a tangent to be computed: some result must read it. Those
// read directly are the output's (for a JVP) and every value that the backward rule of an
// adjoint-tangent node declares in its `reads` mask; then, backward, every input of a needed
// active node (its tangent rule reads them).
void Tape::mark_needed_tangents(const Request& req, std::size_t count) {
  if (req.output_tangent) nodes_[count - 1].tangent_needed = true;
  if (!req.adjoint_tangents.empty()) {
    for (std::size_t i = 0; i < count; ++i) {
      Node& n = nodes_[i];
      if (!n.rules || !n.adjoint_tangent || !n.on_gradient_path) continue;
      if (n.rules->reads & kReadsOutput) n.tangent_needed = true;
      for (int j = 0; j < n.num_inputs; ++j)
        if (declares_input(n.rules->reads, j)) nodes_[static_cast<std::size_t>(input_id(n, j))].tangent_needed = true;
    }
  }
  for (std::size_t i = count; i-- > 0;) {
    Node& n = nodes_[i];
    if (!(n.tangent_needed && n.tangent_active)) continue;
    for (int j = 0; j < n.num_inputs; ++j) nodes_[static_cast<std::size_t>(input_id(n, j))].tangent_needed = true;
  }
}

// Forward mode, K directions at once (CppAD's Forward(1)): each needed active op's tangent from
// its inputs'. Seeds on leaves that no requested result reads are dropped.
void Tape::forward_tangents(std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    Node& n = nodes_[i];
    if (!n.rules || !n.tangent_active || !n.tangent_needed) continue;
    n.tangent = n.rules->tangent(*this, n);
  }
  for (Node& n : nodes_)
    if (!n.rules && !n.tangent_needed) n.tangent = Tensor();
}

// The output's adjoint: the caller's seed, or 1 for a scalar loss. Its tangent is zero (the
// seed does not depend on any leaf): tangents enter the adjoints through the rules' Dual reads.
void Tape::seed_output_adjoint(const Request& req, std::size_t count) {
  for (const auto& [var, seed] : req.output_adjoints) {  // owned copies: the sweep adds into them
    Node& n = nodes_[static_cast<std::size_t>(var.id())];
    GRADHPO_CHECK(seed.defined() && seed.numel() == n.value.numel() && seed.dtype() == n.value.dtype(),
                  "differentiate: output adjoint for node " + std::to_string(var.id()) + " of shape " +
                      n.value.shape().str() + " must have as many elements and its dtype");
    if (n.adjoint.value.defined())  // one result given twice (a state part an optimizer returns unchanged, say)
      kernels::axpy(n.adjoint.value, seed.reshape(n.value.shape()));
    else
      n.adjoint = Dual(seed.reshape(n.value.shape()).clone());
  }
  if (!req.output_adjoints.empty()) return;
  Node& out = nodes_[count - 1];
  if (req.output_adjoint.defined()) {
    GRADHPO_CHECK(req.output_adjoint.numel() == out.value.numel(),
            "differentiate: output adjoint of shape " + req.output_adjoint.shape().str() +
                " for an output of shape " + out.value.shape().str());
    out.adjoint = Dual(req.output_adjoint.reshape(out.value.shape()).clone());
  } else {
    GRADHPO_CHECK(out.value.numel() == 1, "differentiate: the output must be a scalar loss to differentiate, got shape " +
                                        out.value.shape().str() + " (pass output_adjoint for a vector output)");
    out.adjoint = Dual(Tensor::full(out.value.shape(), 1.0, out.value.dtype(), out.value.device()));
  }
}

// Reverse order, dual adjoints (CppAD's Reverse(2) when tangents exist): each op on the gradient
// path that received an adjoint passes it to its inputs. A node whose adjoint tangent nobody
// asked for runs its rule on values only (strip_tangents_), so it does first-order work. An
// intermediate's adjoint is dropped once passed on: only the leaves' are kept.
void Tape::sweep_adjoints(std::size_t count) {
  for (std::size_t i = count; i-- > 0;) {
    Node& n = nodes_[i];
    if (!n.rules || !n.on_gradient_path || !n.adjoint.value.defined()) continue;
    finish_adjoint(static_cast<std::int32_t>(i));  // a slice of an op's result filled its adjoint
    strip_tangents_ = !n.adjoint_tangent;
    const Dual g = strip_tangents_ ? n.adjoint.value_only() : n.adjoint;
    in_backward_ = &n;
    n.rules->backward(*this, n, g);
    in_backward_ = nullptr;
    strip_tangents_ = false;
    if (!n.is_variable) n.adjoint = Dual();
  }
}

// The leaves' adjoints as differentiate returns them: those that slices filled piece by piece
// made whole (their unwritten ranges zeroed), and each owning its storage — a leaf's adjoint
// may still share it with another's (both inputs of an add), and a caller may update one in
// place.
void Tape::collect_results(std::size_t count) {
  while (!partial_.empty()) finish_adjoint(partial_.back().id);
  for (std::size_t i = 0; i < count; ++i) {
    Node& n = nodes_[i];
    if (!n.is_variable) continue;
    if (!n.gradient_wanted) n.adjoint.value = Tensor();  // rules may have skipped it (needs_adjoint_value)
    if (n.adjoint.value.defined() && !n.adjoint.value.unique()) n.adjoint.value = n.adjoint.value.clone();
    if (n.adjoint.tangent.defined() && !n.adjoint.tangent.unique()) n.adjoint.tangent = n.adjoint.tangent.clone();
  }
}

Dual Tape::adjoint(const Var& v) const {
  GRADHPO_CHECK(!v.is_plain(), "Tape::adjoint: a Var computed in plain mode has no adjoint");
  return node(v).adjoint;
}

Tensor Tape::tangent(const Var& v) const {
  GRADHPO_CHECK(!v.is_plain(), "Tape::tangent: a Var computed in plain mode has no tangent");
  return node(v).tangent;
}

}  // namespace gradhpo
