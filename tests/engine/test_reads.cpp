// The `reads` contract of every op (STYLE.md 13). An op's mask says which of its values its
// backward rule reads as duals; the tangent sweep computes only those tangents, so a rule that
// reads one it did not declare would see a zero tangent and return a wrong H·v. The tape checks
// each read (Tape::input / Tape::output throw); these tests run forward-over-reverse through
// every registered op with all inputs active, and then drop each declared bit in turn: the sweep
// must throw for every one (so no mask declares what its rule does not read, either).
#include "check_ad.h"

#include <functional>
#include <set>

#include <gradhpo/engine/ops.h>

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

// Variables of one case, all of which get tangents and adjoint tangents.
struct Leaves {
  Tape& tape;
  std::vector<Var> vars;
  std::uint64_t seed = 100;
  Var var(const Shape& s) { return vars.emplace_back(tape.variable(away_from_zero(s, seed++))); }
  Var positive(const Shape& s) {
    return vars.emplace_back(tape.variable(random_tensor(s, seed++, 0.5, 1.5)));
  }
};

struct OpCase {
  const char* name;
  std::function<Var(Leaves&)> build;
};

std::vector<OpCase> every_op() {
  const Shape v{2, 3}, img{2, 3, 4, 4};
  const Tensor labels = Tensor::from_labels({1, 0});
  return {
      {"add", [=](Leaves& l) { return add(l.var(v), l.var(Shape{3})); }},
      {"sub", [=](Leaves& l) { return sub(l.var(v), l.var(v)); }},
      {"mul", [=](Leaves& l) { return mul(l.var(v), l.var(Shape{3})); }},
      {"div", [=](Leaves& l) { return div(l.var(v), l.var(v)); }},
      {"affine", [=](Leaves& l) { return affine(l.var(v), 2.0, 1.0); }},
      {"exp", [=](Leaves& l) { return exp(l.var(v)); }},
      {"log", [=](Leaves& l) { return log(l.positive(v)); }},
      {"tanh", [=](Leaves& l) { return tanh(l.var(v)); }},
      {"sigmoid", [=](Leaves& l) { return sigmoid(l.var(v)); }},
      {"relu", [=](Leaves& l) { return relu(l.var(v)); }},
      {"softplus", [=](Leaves& l) { return softplus(l.var(v)); }},
      {"square", [=](Leaves& l) { return square(l.var(v)); }},
      {"sqrt", [=](Leaves& l) { return sqrt(l.positive(v)); }},
      {"reciprocal", [=](Leaves& l) { return reciprocal(l.var(v)); }},
      {"matmul", [=](Leaves& l) { return matmul(l.var(v), l.var(Shape{3, 4})); }},
      {"matmul aᵀbᵀ", [=](Leaves& l) { return matmul(l.var(Shape{3, 2}), l.var(Shape{4, 3}), true, true); }},
      {"dot", [=](Leaves& l) { return dot(l.var(v), l.var(v)); }},
      {"weighted_l2", [=](Leaves& l) { return weighted_l2(l.var(v), l.var(v)); }},
      {"sum", [=](Leaves& l) { return sum(l.var(v), 1); }},
      {"mean", [=](Leaves& l) { return mean(l.var(v)); }},
      {"reshape", [=](Leaves& l) { return reshape(l.var(v), Shape{3, 2}); }},
      {"slice", [=](Leaves& l) { return slice(l.var(v), 1, Shape{4}); }},
      {"concat", [=](Leaves& l) { return concat({l.var(v), l.var(Shape{2})}); }},
      {"log_softmax", [=](Leaves& l) { return log_softmax(l.var(v)); }},
      {"pick", [=](Leaves& l) { return pick(l.var(v), labels); }},
      {"channel_bias", [=](Leaves& l) { return channel_bias(l.var(img), l.var(Shape{3})); }},
      {"channel_scale", [=](Leaves& l) { return channel_scale(l.var(img), l.var(Shape{3})); }},
      {"channel_affine", [=](Leaves& l) { return channel_affine(l.var(img), l.var(Shape{3}), l.var(Shape{3})); }},
      {"channel_sum", [=](Leaves& l) { return channel_sum(l.var(img)); }},
      {"batch_standardize", [=](Leaves& l) { return batch_standardize(l.var(img), 1e-5); }},
      {"batch_norm_train", [=](Leaves& l) { return batch_norm_train(l.var(img), l.var(Shape{3}), l.var(Shape{3}), 1e-5); }},
      {"batch_norm_relu_train",
       [=](Leaves& l) { return batch_norm_relu_train(l.var(img), l.var(Shape{3}), l.var(Shape{3}), 1e-5); }},
      {"conv2d", [=](Leaves& l) { return conv2d(l.var(img), l.var(Shape{2, 3, 3, 3}), 1, 1); }},
      {"conv2d + bias", [=](Leaves& l) { return conv2d(l.var(img), l.var(Shape{2, 3, 3, 3}), l.var(Shape{2}), 2, 0); }},
      {"max_pool2d", [=](Leaves& l) { return max_pool2d(l.var(img), 2, 2); }},
      {"avg_pool2d", [=](Leaves& l) { return avg_pool2d(l.var(img), 2, 2); }},
      {"global_avg_pool", [=](Leaves& l) { return global_avg_pool(l.var(img)); }},
  };
}

// One forward-over-reverse sweep with K = 2 tangents on every leaf and every adjoint asked for.
void sweep(Tape& t, const Leaves& l, const Var& loss) {
  Request r;
  r.output = loss;
  for (std::size_t i = 0; i < l.vars.size(); ++i)
    r.tangents.emplace_back(l.vars[i], random_tensor(Shape{2, l.vars[i].numel()}, 300 + i));
  r.gradients = l.vars;
  r.adjoint_tangents = l.vars;
  t.differentiate(r);
}

// The declared bits that exist for this node: its inputs' and its output's.
std::vector<std::uint32_t> declared_bits(const Node& n) {
  std::vector<std::uint32_t> bits;
  for (int i = 0; i < n.num_inputs && i < 31; ++i)
    if (declares_input(n.rules->reads, i)) bits.push_back(1u << i);
  if (n.rules->reads & kReadsOutput) bits.push_back(kReadsOutput);
  return bits;
}

}  // namespace

TEST_CASE("reads masks: forward-over-reverse through every registered op reads only what its mask declares") {
  std::set<std::string> covered;
  for (const OpCase& c : every_op()) {
    INFO("case: " << c.name);
    Tape t;
    Leaves l{t};
    const Var loss = wrap(c.build(l));
    CHECK_NOTHROW(sweep(t, l, loss));
    for (std::size_t i = 0; i < t.size(); ++i)
      if (const OpRules* r = t.node_at(static_cast<std::int32_t>(i)).rules) covered.insert(r->name);
  }
  REQUIRE(!registered_ops().empty());
  for (const OpRules* r : registered_ops()) CHECK_MESSAGE(covered.count(r->name) == 1, "no case exercises op " << r->name);
}

TEST_CASE("reads masks: dropping any declared bit of any op makes the sweep throw") {
  int dropped = 0;
  for (const OpCase& c : every_op()) {
    Tape t;
    Leaves l{t};
    const Var y = c.build(l);
    const Var loss = wrap(y);
    // The case's own op nodes (those of wrap() read constants, which need no declaration).
    for (std::int32_t id = 0; id <= y.id(); ++id) {
      // The tape owns the node; the test swaps its rules for an edited copy and back.
      Node& n = const_cast<Node&>(t.node_at(id));
      const OpRules* original = n.rules;
      if (!original) continue;
      for (std::uint32_t bit : declared_bits(n)) {
        INFO("case " << c.name << ", op " << original->name << ", dropped "
                     << (bit == kReadsOutput ? std::string("output") : "input " + std::to_string(__builtin_ctz(bit))));
        OpRules edited = *original;
        edited.reads &= ~bit;
        n.rules = &edited;
        CHECK_THROWS_AS(sweep(t, l, loss), Error);
        n.rules = original;
        ++dropped;
      }
    }
    CHECK_NOTHROW(sweep(t, l, loss));
  }
  CHECK(dropped >= 20);
}
