// Tape and Var: reverse mode, forward mode and forward-over-reverse on one recording.
//
// Model code manipulates Var handles; every operation records a Node (its value, its inputs and
// a pointer to its op's rules) in creation order. Values are computed at once (plain mode).
// `Tape::differentiate` then runs, on demand:
//   1. a tangent sweep in creation order (forward mode, K directions at once), and
//   2. a backward sweep in reverse order whose adjoints are Duals: the adjoint rules are written
//      with Dual primitives, so when tangents are present the sweep differentiates itself
//      (forward-over-reverse). At a leaf w the adjoint is (∇_w L, H v); at a hyperparameter
//      leaf λ it is (∇_λ L, ∂_λ(v·∇_w L)). This is CppAD's Forward(1) then Reverse(2).
// Before the sweeps, activity analysis marks which tangents and adjoints can reach what was
// asked for; everything else is skipped, so a data batch costs no adjoint, and a mixed product
// whose λ enters only through a regulariser costs about one gradient.
//
// The tape is an arena: `reset()` drops the nodes but keeps capacity, and tensor storage comes
// from the caching pool, so a repeated training step allocates nothing new in steady state.
//
// Plain mode (`set_recording(false)`): the same model code runs for values only. No node is
// kept; each Var holds its own value, so an intermediate is freed as soon as nothing refers to
// it — inference over a large batch needs only the live activations, not the whole graph.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "dual.h"
#include "payload.h"

namespace gradhpo {

class Tape;
struct Node;

/// What one primitive knows how to do beyond computing its value.
struct OpRules {
  const char* name;
  /// The output tangent [K, numel] from the inputs' values and tangents (Tape::dual), or an
  /// undefined tensor when it is zero.
  Tensor (*tangent)(const Tape& tape, const Node& node);
  /// Adds the node's adjoint contributions to its inputs (Tape::accumulate), written with Dual
  /// primitives so that they carry tangents when the inputs do.
  void (*backward)(Tape& tape, const Node& node, const Dual& adjoint);
  /// Which values the backward rule reads as Duals (Tape::input, Tape::output): bit i for input
  /// i, kReadsOutput for the output. It decides which tangents a forward-over-reverse sweep
  /// computes, so an undeclared read would see a zero tangent and give a wrong H·v: the tape
  /// checks every read against it (Tape::input and Tape::output throw). A rule that needs only
  /// a value reads it with Tape::input_value and declares nothing.
  std::uint32_t reads;
  /// The op's value is input 0's elements [start, start + numel) (slice; start is its node's
  /// SlicePayload): a rule feeding it may then write its adjoint straight into input 0's
  /// (Tape::adjoint_destination).
  bool slices_input = false;
};
constexpr std::uint32_t kReadsOutput = 1u << 31;
constexpr std::uint32_t kReadsInputs = 0x7fffffffu;
/// Whether `reads` declares input i (inputs from the 31st on share one meaning: all inputs).
constexpr bool declares_input(std::uint32_t reads, int i) {
  return i < 31 ? ((reads >> i) & 1u) != 0 : (reads & kReadsInputs) == kReadsInputs;
}

/// Every op's rules, registered by the file that defines them (GRADHPO_REGISTER_OPS), so that
/// a check can run over all of them (tests/engine/test_reads.cpp). Only files linked into the
/// program are listed.
const std::vector<const OpRules*>& registered_ops();
/// Adds rules to registered_ops(); returns true (for the registering static).
bool register_ops(std::initializer_list<const OpRules*> rules);
#define GRADHPO_REGISTER_OPS(...) \
  [[maybe_unused]] const bool gradhpo_ops_registered = ::gradhpo::register_ops({__VA_ARGS__})

struct Node {
  const OpRules* rules = nullptr;  // null for leaves (variables and constants)
  std::int32_t first_input = 0;    // inputs are Tape::inputs_[first_input, +num_inputs)
  std::int32_t num_inputs = 0;
  bool is_variable = false;        // a leaf that can take gradients and tangents
  Tensor value;
  NodePayload payload;             // what the op keeps for its rules (engine/payload.h)
  // Filled by a sweep.
  Tensor tangent;
  Dual adjoint;
  bool tangent_active = false;     // depends on a leaf with a tangent seed
  bool tangent_needed = false;     // its tangent is read by a requested result
  bool on_gradient_path = false;   // depends on a leaf whose adjoint is requested
  bool adjoint_tangent = false;    // depends on a leaf whose adjoint tangent is requested
  bool gradient_wanted = false;    // a variable whose gradient (adjoint value) is requested

  /// The op's payload as family P; throws if the node holds another (a rule reading the wrong
  /// family's fields is a bug, caught at the read rather than as garbage).
  template <class P> const P& payload_as() const {
    const P* p = std::get_if<P>(&payload);
    GRADHPO_CHECK(p != nullptr, std::string(rules ? rules->name : "leaf") +
                                    ": the node holds another op family's payload (internal error)");
    return *p;
  }
};

class Var {
 public:
  Var() = default;
  Tape& tape() const;
  std::int32_t id() const { return id_; }
  const Tensor& value() const;
  const Shape& shape() const { return value().shape(); }
  /// True for a Var made in plain mode (it holds its value; nothing is recorded).
  bool is_plain() const { return id_ == kPlain; }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  std::int64_t numel() const { return value().numel(); }
  double item() const { return value().item(); }
  bool valid() const { return tape_ != nullptr; }

 private:
  friend class Tape;
  static constexpr std::int32_t kPlain = -2;
  Var(Tape* t, std::int32_t id, std::uint32_t generation) : tape_(t), id_(id), generation_(generation) {}
  Var(Tape* t, Tensor value, std::uint32_t generation)
      : tape_(t), id_(kPlain), generation_(generation), held_(std::move(value)) {}
  Tape* tape_ = nullptr;
  std::int32_t id_ = -1;
  std::uint32_t generation_ = 0;
  Tensor held_;  // the value, in plain mode only
};

/// What a call to Tape::differentiate asks for.
struct Request {
  Var output;
  /// Tangent seeds: a leaf and its directions, [K, numel] (or the leaf's shape for K = 1).
  std::vector<std::pair<Var, Tensor>> tangents;
  /// Leaves whose adjoint values (gradients) are wanted.
  std::vector<Var> gradients;
  /// Leaves whose adjoint tangents are wanted (H v for weights, the mixed product for λ).
  std::vector<Var> adjoint_tangents;
  /// Compute the output's tangent (forward mode, JVP).
  bool output_tangent = false;
  /// Adjoint seed of the output; undefined means 1 for a scalar output.
  Tensor output_adjoint;
  /// Instead of `output`: several results, each with its adjoint seed (of its numel) — the VJP of
  /// a function with several vector results, such as an optimizer step's new state (w, v), without
  /// concatenating them first.
  std::vector<std::pair<Var, Tensor>> output_adjoints;
};

class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// A leaf that gradients and tangents can be asked of (weights w, hyperparameters λ).
  Var variable(const Tensor& value);
  /// A leaf that is data: it never carries an adjoint or a tangent.
  Var constant(const Tensor& value);
  /// Records an op node with what its rules need beyond its inputs (monostate for nothing).
  /// Used by the primitives in engine/ops.
  Var record(const OpRules* rules, Tensor value, std::initializer_list<Var> inputs, NodePayload payload = {});
  Var record(const OpRules* rules, Tensor value, const std::vector<Var>& inputs, NodePayload payload = {});

  /// Runs the tangent and backward sweeps `request` needs. Earlier sweep results are cleared.
  void differentiate(const Request& request);
  /// The leaf's or node's adjoint after a backward sweep (undefined value if none reached it).
  Dual adjoint(const Var& v) const;
  /// The node's tangent [K, numel] after a sweep (undefined means zero).
  Tensor tangent(const Var& v) const;
  std::int64_t directions() const { return K_; }

  /// Drops all nodes (capacity is kept). Vars recorded before become invalid.
  void reset();
  /// Frees what the last differentiate left on the nodes (tangents, adjoints) and keeps the
  /// recorded values: a pass kept for a later differentiate (hpo's stored passes) holds only
  /// what recomputing it would cost.
  void release_sweep() { clear_sweep(); }
  /// Recording on (the default) keeps every node for differentiation; off is plain mode:
  /// values only, nothing kept. Vars of one mode cannot be mixed with the other's.
  void set_recording(bool on) { recording_ = on; }
  bool recording() const { return recording_; }
  /// Sums `count` doubles in place over the processes that each hold a shard of the batch, in a
  /// fixed order, with the same result on every process (data-parallel training; the engine
  /// knows nothing of how: hpo/mpi supplies it). While one is set, training-mode batch norm
  /// (ops/batchnorm.h) recorded on this tape normalizes with the whole batch's statistics and
  /// its rules take their channel sums over the whole batch too: synchronized batch norm. Kept
  /// across reset(); an empty function turns it off.
  using ShardSum = std::function<void(double* values, std::int64_t count)>;
  void set_shard_sum(ShardSum sum) { shard_sum_ = std::move(sum); }
  const ShardSum& shard_sum() const { return shard_sum_; }
  std::size_t size() const { return nodes_.size(); }

  // For op rules.
  Node& node(const Var& v);
  const Node& node(const Var& v) const;
  const Node& node_at(std::int32_t id) const { return nodes_[static_cast<std::size_t>(id)]; }
  std::int32_t input_id(const Node& n, int i) const {
    return inputs_[static_cast<std::size_t>(n.first_input + i)];
  }
  const Tensor& input_value(const Node& n, int i) const { return node_at(input_id(n, i)).value; }
  /// Input i as a dual: value plus the tangent this sweep computed for it (if any). While a
  /// backward rule runs for a node whose adjoint tangent nobody asked for, tangents are left
  /// out so the rule does value work only. A backward rule that reads an input its `reads`
  /// mask does not declare throws (see OpRules::reads).
  Dual input(const Node& n, int i) const;
  /// The node's own output as a dual (a backward rule must declare kReadsOutput).
  Dual output(const Node& n) const;
  /// Whether a backward rule should compute the contribution to input i at all.
  bool needs_adjoint(const Node& n, int i) const { return node_at(input_id(n, i)).on_gradient_path; }
  /// Whether input i's adjoint keeps a tangent (accumulate drops it otherwise), so a rule can
  /// skip computing one.
  bool needs_adjoint_tangent(const Node& n, int i) const {
    return !strip_tangents_ && node_at(input_id(n, i)).adjoint_tangent;
  }
  /// Whether anyone reads input i's adjoint value: false only when input i is a variable, or a
  /// slice of one, whose gradient the request did not ask for (only its adjoint tangent: H·v
  /// without ∇L). A rule may then skip the value part of its contribution (write zeros there);
  /// that variable's adjoint value is left undefined after the sweep.
  bool needs_adjoint_value(const Node& n, int i) const {
    const Node* s = &node_at(input_id(n, i));
    while (s->rules && s->rules->slices_input) s = &node_at(input_id(*s, 0));
    return !s->is_variable || s->gradient_wanted;
  }
  /// adjoint(input i) += contribution (reshaped to the input's shape).
  void accumulate(const Node& n, int i, Dual contribution);
  /// adjoint(input i)[start, start + contribution.numel) += contribution (flat).
  void accumulate_range(const Node& n, int i, std::int64_t start, const Dual& contribution);
  /// Where a backward rule may write its whole contribution to input i (value, and `K` tangent
  /// rows; K = 0 for none) before passing it to accumulate. When input i is a slice
  /// (OpRules::slices_input) whose range of its source's adjoint nothing has written yet, and
  /// K ≤ 1 (so the tangent range is contiguous too), these are views of that adjoint: the
  /// product lands where the slice's backward would have copied it, and accumulate then skips
  /// the copy (issue 9: a model's weight gradients written in place). Otherwise fresh tensors.
  /// With K > 1 the directions' ranges are K strided pieces of the source's adjoint tangent:
  /// a rule that can write them one by one passes `tangent_rows`, which then receives them (K
  /// views of the slice's size) while the returned tangent stays undefined.
  /// The rule must write every element of what it gets.
  Dual adjoint_destination(const Node& n, int i, std::int64_t K, std::vector<Tensor>* tangent_rows = nullptr);
  /// Tape and generation checks shared by every op: throws unless v belongs to this tape now.
  void check(const Var& v, const char* op) const;

 private:
  friend class Var;
  Var record(const OpRules* rules, Tensor value, const Var* inputs, std::size_t count, NodePayload&& payload);
  Var add_node(Node&& n);
  // The steps of differentiate, in order (tape.cpp says what each does and why).
  void clear_sweep();
  void seed_tangents(const Request& req);
  void propagate_activity(std::size_t count);
  void mark_needed_tangents(const Request& req, std::size_t count);
  void forward_tangents(std::size_t count);
  void seed_output_adjoint(const Request& req, std::size_t count);
  void sweep_adjoints(std::size_t count);
  void collect_results(std::size_t count);
  Dual& adjoint_slot(std::int32_t id);
  void check_declared_read(const Node& n, int input) const;

  // An adjoint that slices fill piece by piece (accumulate_range, e.g. a model's parameter
  // slices of w): the flat ranges of its value, and of every tangent row, that hold a
  // contribution. The rest of the slot is uninitialized until finish_adjoint zeroes it — before
  // anything reads the slot or adds to it elementwise — so a slot the slices cover is written
  // once (a copy per slice) instead of zero-filled and then added to.
  struct PartialAdjoint {
    std::int32_t id = -1;
    bool value_partial = false, tangent_partial = false;
    std::vector<std::pair<std::int64_t, std::int64_t>> value, tangent;  // [begin, end), disjoint
  };
  PartialAdjoint* partial_adjoint(std::int32_t id);
  void finish_adjoint(std::int32_t id);
  // Whether contribution c to slice node `slice` is already in its source's adjoint (written
  // through views from adjoint_destination).
  bool written_in_source(const Node& slice, const Dual& c);
  std::vector<PartialAdjoint> partial_;

  std::vector<Node> nodes_;
  std::vector<std::int32_t> inputs_;
  std::uint32_t generation_ = 1;
  std::int64_t K_ = 0;
  bool strip_tangents_ = false;  // set while a backward rule runs for a non-adjoint-tangent node
  const Node* in_backward_ = nullptr;  // the node whose backward rule is running (reads checks)
  bool recording_ = true;
  ShardSum shard_sum_;
  Node scratch_;  // in plain mode, what node() returns (the last op's node, value moved out)
};

}  // namespace gradhpo
